import Engine
for p in CommandLine.arguments.dropFirst() {
    do {
        let f = try GGUFFile(path: p)
        print(p, f.version, f.alignment, f.tensors.count)
        for k in f.metadataKeys { print("  ", k, f.metadata[k]!) }
        var types: [String: Int] = [:]
        for t in f.tensors { types["\(t.type)", default: 0] += 1 }
        print(types)
        for t in f.tensors.prefix(20) { print("  ", t.name, t.dims, t.type) }
    } catch { print(error) }
}
