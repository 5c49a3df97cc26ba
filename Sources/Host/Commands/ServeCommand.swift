// `refrain serve`: the OpenAI-compatible server (Serve/OpenAIServer.swift) over one model, on HTTPServer.
import Engine
import Foundation

/// `refrain serve [--model PATH] [--host 127.0.0.1] [--port 8080] [--threads N] [--name ID] [--read-timeout S]`.
func serveCommand(_ o: ServeCommand) throws -> Never {
    let host = o.host
    let port = try o.port.map { s -> Int in
        guard let p = Int(s), p >= 0, p <= 65535 else { throw UsageError(description: "--port expects 0..65535, got \(s)") }
        return p
    } ?? 8080
    let readTimeout = try o.readTimeout.map { s -> Double in
        guard let t = Double(s), t.isFinite, t > 0 else {
            throw UsageError(description: "--read-timeout expects a number of seconds > 0, got \(s)")
        }
        return t
    } ?? 30
    let m = try o.model.load()
    let file = URL(fileURLWithPath: m.file.path).lastPathComponent
    let name = o.name ?? (file.hasSuffix(".gguf") ? String(file.dropLast(5)) : file)
    let api = OpenAIServer(model: m, name: name)
    let server = HTTPServer(readTimeout: readTimeout) { req, conn in api.handle(req, conn) }
    let bound: Int
    do { bound = try server.bind(host: host, port: port) } catch let f as HTTPFailure { throw UsageError(description: f.message) }
    FileHandle.standardError.write(Data("refrain serve: \(name) at http://\(host):\(bound)/v1 (OpenAI-compatible; Ctrl-C stops)\n".utf8))
    server.serve()
}
