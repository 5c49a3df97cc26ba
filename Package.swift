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
        .executable(name: "refrain", targets: ["refrain"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Host", targets: ["Host"]),
    ],
    dependencies: [
        // The command line: subcommands, options with their help, completion scripts.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CLua", path: "Sources/CLua", pkgConfig: "lua5.4",
                       providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CEdit", path: "Sources/CEdit", pkgConfig: "libedit",
                       providers: [.apt(["libedit-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "Engine", path: "Sources/Engine", swiftSettings: engineFlags),
        // The host library: the REPL, the Lua bindings, the commands, the run store, the HTTP client and server.
        // Lua/lm/*.lua, the harness modules written in Lua, are compiled into it (see LmHarness.swift).
        .target(name: "Host", dependencies: ["Engine", "CLua", "CEdit", "CSQLite",
                                             .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/Host",
                resources: [.embedInCode("Lua/lm")],
                swiftSettings: portable ? [.define("REFRAIN_PORTABLE")] : []),
        // The executable: one file that hands the command line to the library.
        .executableTarget(name: "refrain", dependencies: ["Host"], path: "Sources/refrain"),
        .testTarget(name: "EngineTests", dependencies: ["Engine"], path: "Tests/EngineTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "HostTests", dependencies: ["Host"], path: "Tests/HostTests"),
    ]
)
