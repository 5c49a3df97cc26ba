// A small HTTP/1.1 server over POSIX sockets: one thread accepts, each connection is read and answered on its own
// thread, one request per connection (`Connection: close`), bodies by Content-Length and bounded in size. Enough
// for an OpenAI-compatible endpoint on loopback; not a general web server (no TLS, no chunked request bodies).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A request as read from a connection.
struct HTTPRequest {
    let method: String
    /// The path without the query string.
    let path: String
    /// Header names in lower case.
    let headers: [String: String]
    let body: Data
}

/// A request's head, parsed: what comes before its body.
struct HTTPHead {
    let method: String
    /// The path without the query string.
    let path: String
    /// Header names in lower case.
    let headers: [String: String]
    /// The body's length in bytes (0 without a Content-Length).
    let contentLength: Int
}

/// An HTTP error a handler or the reader answers with.
struct HTTPFailure: Error {
    let status: Int
    let message: String
    var type = "invalid_request_error"
}

/// One accepted connection: the response is written to it, whole or as a stream.
final class HTTPConnection: @unchecked Sendable {
    let fd: Int32
    private(set) var open = true

    init(fd: Int32) { self.fd = fd }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Payload Too Large"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }

    /// Writes all of `data`; false (and the connection marked closed) when the peer has gone.
    @discardableResult func write(_ data: Data) -> Bool {
        guard open else { return false }
        let ok = data.withUnsafeBytes { (b: UnsafeRawBufferPointer) -> Bool in
            var off = 0
            while off < b.count {
                let n = Glibc.send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        if !ok { open = false }
        return ok
    }

    /// A whole response with a body.
    func respond(_ status: Int, contentType: String = "application/json", _ body: Data) {
        var head = "HTTP/1.1 \(status) \(HTTPConnection.reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        if write(Data(head.utf8)) { write(body) }
    }

    /// Starts a server-sent-event stream; the body ends when the connection closes.
    func startEvents() -> Bool {
        write(Data("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n".utf8))
    }

    /// One `data:` event.
    func event(_ payload: String) -> Bool { write(Data("data: \(payload)\n\n".utf8)) }

    func close() {
        open = false
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}

/// The listening socket and its accept loop.
final class HTTPServer: @unchecked Sendable {
    typealias Handler = @Sendable (HTTPRequest, HTTPConnection) -> Void
    let maxBody: Int
    let readTimeout: Double
    private let handler: Handler
    private var listener: Int32 = -1
    /// Connections being served at once, at most; more wait in the kernel's backlog.
    private let slots: DispatchSemaphore

    init(maxBody: Int = 8 << 20, readTimeout: Double = 30, maxConnections: Int = 64, handler: @escaping Handler) {
        self.maxBody = maxBody
        self.readTimeout = readTimeout
        self.handler = handler
        slots = DispatchSemaphore(value: maxConnections)
    }

    /// Binds and listens on `host:port` (an IPv4 address; port 0 picks a free one); returns the bound port.
    func bind(host: String, port: Int) throws -> Int {
        signal(SIGPIPE, SIG_IGN)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPFailure(status: 500, message: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
            Glibc.close(fd)
            throw HTTPFailure(status: 500, message: "--host expects an IPv4 address such as 127.0.0.1 or 0.0.0.0, got '\(host)'")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let e = String(cString: strerror(errno))
            Glibc.close(fd)
            throw HTTPFailure(status: 500, message: "cannot listen on \(host):\(port): \(e)")
        }
        guard listen(fd, 128) == 0 else { throw HTTPFailure(status: 500, message: "listen: \(String(cString: strerror(errno)))") }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listener = fd
        return Int(UInt16(bigEndian: got.sin_port))
    }

    /// Accepts connections until the process ends; each is served on a thread of its own.
    func serve() -> Never {
        while true {
            slots.wait()
            let c = accept(listener, nil, nil)
            if c < 0 { slots.signal(); continue }
            let conn = HTTPConnection(fd: c)
            Thread.detachNewThread { [self] in
                defer { conn.close(); slots.signal() }
                do {
                    let req = try read(conn)
                    handler(req, conn)
                } catch let f as HTTPFailure {
                    conn.respond(f.status, JSON.object([("error", .object([("message", .string(f.message)),
                                                                             ("type", .string(f.type))]))]).data)
                } catch {}
            }
        }
    }

    /// Reads one request: the head up to a blank line (64 KiB at most), then Content-Length bytes of body, all
    /// within `readTimeout` seconds of the connection's start (each `recv` waits for what is left of that time, so a
    /// client sending a byte at a time cannot hold the connection longer).
    private func read(_ conn: HTTPConnection) throws -> HTTPRequest {
        let deadline = Date().addingTimeInterval(readTimeout)
        var buf = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        /// Receives more bytes into `buf`; throws 408 past the deadline and 400 when the peer closes first.
        func receive(_ what: String, upTo limit: Int) throws {
            while true {
                let left = deadline.timeIntervalSinceNow
                guard left > 0 else { throw HTTPFailure(status: 408, message: "the \(what) was not received in \(HTTPServer.seconds(readTimeout))") }
                var tv = timeval(tv_sec: Int(left), tv_usec: min(999_999, Int((left - left.rounded(.down)) * 1e6) + 1))
                setsockopt(conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                let n = recv(conn.fd, &chunk, min(chunk.count, limit), 0)
                if n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) { continue }
                if n < 0 { throw HTTPFailure(status: 400, message: "reading the \(what): \(String(cString: strerror(errno)))") }
                if n == 0 { throw HTTPFailure(status: 400, message: "the connection closed before the \(what) ended") }
                buf.append(contentsOf: chunk[0..<n])
                return
            }
        }
        var parsed: (head: HTTPHead, bodyStart: Int)? = nil
        while parsed == nil {
            let searched = max(0, buf.count - 3)
            try receive("request", upTo: chunk.count)
            // The head is parsed once its blank line has come (only the new bytes are searched for it).
            if buf.count > HTTPServer.maxHead || buf[searched...].range(of: Data("\r\n\r\n".utf8)) != nil {
                parsed = try HTTPServer.parseHead(buf, maxBody: maxBody)
            }
        }
        let (head, bodyStart) = parsed!
        if head.headers["expect"]?.lowercased() == "100-continue" { conn.write(Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
        while buf.count - bodyStart < head.contentLength {
            try receive("request body", upTo: head.contentLength - (buf.count - bodyStart))
        }
        return HTTPServer.request(head, buf, bodyStart: bodyStart)!
    }

    static func seconds(_ t: Double) -> String { t == t.rounded() ? "\(Int(t)) s" : "\(t) s" }

    /// The largest request head read (the request line and the headers).
    static let maxHead = 65536

    /// Parses the head at the start of `bytes`, the bytes received so far: nil while its blank line has not come
    /// (and the bytes are under `maxHead`), else the head and the offset of the body's first byte. Throws a 400 for
    /// a malformed request line, header or Content-Length, or a chunked body, and a 413 for a head over `maxHead`
    /// or a Content-Length over `maxBody`.
    static func parseHead(_ bytes: Data, maxBody: Int) throws -> (head: HTTPHead, bodyStart: Int)? {
        guard let end = bytes.range(of: Data("\r\n\r\n".utf8)) else {
            if bytes.count > maxHead { throw HTTPFailure(status: 413, message: "request head over 64 KiB") }
            return nil
        }
        guard end.lowerBound - bytes.startIndex <= maxHead else { throw HTTPFailure(status: 413, message: "request head over 64 KiB") }
        let text = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let start = lines.removeFirst().split(separator: " ")
        guard start.count == 3, start[2].hasPrefix("HTTP/1.") else {
            throw HTTPFailure(status: 400, message: "malformed request line")
        }
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { throw HTTPFailure(status: 400, message: "malformed header line '\(l.prefix(200))'") }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["transfer-encoding"] != nil {
            throw HTTPFailure(status: 400, message: "chunked request bodies are not accepted: send Content-Length")
        }
        let length = Int(headers["content-length"] ?? "0") ?? -1
        guard length >= 0 else { throw HTTPFailure(status: 400, message: "bad Content-Length") }
        guard length <= maxBody else {
            throw HTTPFailure(status: 413, message: "request body of \(length) bytes is over the limit of \(maxBody) bytes")
        }
        let target = String(start[1])
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        return (HTTPHead(method: String(start[0]), path: path, headers: headers, contentLength: length),
                end.upperBound - bytes.startIndex)
    }

    /// The request whose head is `head` and whose body starts at offset `bodyStart` of `bytes`; nil while the body
    /// is shorter than its Content-Length (bytes past it are ignored: one request per connection).
    static func request(_ head: HTTPHead, _ bytes: Data, bodyStart: Int) -> HTTPRequest? {
        let body = bytes.dropFirst(bodyStart)
        guard body.count >= head.contentLength else { return nil }
        return HTTPRequest(method: head.method, path: head.path, headers: head.headers, body: Data(body.prefix(head.contentLength)))
    }
}
