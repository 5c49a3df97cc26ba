// The program's version, printed by `refrain --version` and written in every run the store records.
import CLua
import Engine

/// "refrain X.Y.Z (engine: ...; Lua 5.4.x)".
let refrainVersion = "refrain 0.1.0 (engine: \(Architecture.supportedList) GGUF on the CPU; \(String(cString: refrain_lua_release())))"
