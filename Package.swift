// swift-tools-version:6.0
// refrain: a Lua REPL and scripting host over a GGUF language-model engine written in Swift.
import PackageDescription

// The engine's kernels are written for AVX2/FMA/F16C on x86-64, with a portable SIMD path elsewhere.
// Package.swift is compiled for the machine that builds, so this picks the flags for that machine's ISA;
// REFRAIN_PORTABLE=1 builds the portable path on x86-64 too (for CPUs without AVX2, and to test that path).
let portable = Context.environment["REFRAIN_PORTABLE"] == "1"
#if arch(x86_64)
let engineFlags: [SwiftSetting] = portable
    ? [.unsafeFlags(["-wmo"]), .define("REFRAIN_PORTABLE")]
    : [.unsafeFlags(["-wmo", "-target-cpu", "haswell"])]
#else
let engineFlags: [SwiftSetting] = [.unsafeFlags(["-wmo"]), .define("REFRAIN_PORTABLE")]
#endif

let package = Package(
    name: "refrain",
    products: [
        .executable(name: "refrain", targets: ["Host"]),
        .library(name: "Engine", targets: ["Engine"]),
    ],
    targets: [
        .systemLibrary(name: "CLua", path: "Sources/CLua", pkgConfig: "lua5.4",
                       providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CEdit", path: "Sources/CEdit", pkgConfig: "libedit",
                       providers: [.apt(["libedit-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "Engine", path: "Sources/Engine", swiftSettings: engineFlags),
        // Lua/lm/*.lua, the harness modules written in Lua, are compiled into the binary (see LmHarness.swift).
        .executableTarget(name: "Host", dependencies: ["Engine", "CLua", "CEdit", "CSQLite"], path: "Sources/Host",
                          resources: [.embedInCode("Lua/lm")],
                          swiftSettings: portable ? [.define("REFRAIN_PORTABLE")] : []),
        .testTarget(name: "EngineTests", dependencies: ["Engine"], path: "Tests/EngineTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "HostTests", dependencies: ["Host"], path: "Tests/HostTests"),
    ]
)
