// refrain: the executable. Everything it does is in the Host library (Sources/Host); Commands/Entry.swift reads
// the command line.
import Host

Refrain.main(Array(CommandLine.arguments.dropFirst()))
