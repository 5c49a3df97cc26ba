// The engine is compiled for AVX2/FMA/F16C on x86-64 (Package.swift). On a CPU without them its first vector
// instruction would kill the process with SIGILL; this check, in code compiled for the baseline ISA, says why
// instead, and how to build the portable path.
import Foundation

/// The x86 features the optimised build needs that this CPU lacks (empty when all are present, or on other ISAs).
func missingCPUFeatures() -> [String] {
    #if arch(x86_64) && !REFRAIN_PORTABLE
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let flags = Set(line.split(separator: " ").map(String.init))
    return ["avx2", "fma", "f16c"].filter { !flags.contains($0) }
    #else
    return []
    #endif
}

/// Stops with a clear message when the CPU cannot run this build.
func requireCPUFeatures() {
    let missing = missingCPUFeatures()
    guard !missing.isEmpty else { return }
    FileHandle.standardError.write(Data("refrain: error: this build needs a CPU with AVX2, FMA and F16C (missing: \(missing.joined(separator: ", "))); rebuild with REFRAIN_PORTABLE=1 swift build -c release\n".utf8))
    exit(1)
}
