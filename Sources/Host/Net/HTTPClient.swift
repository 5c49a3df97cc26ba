// A small HTTP/1.1 client for the remote backend: one request per connection over a POSIX socket for http://
// (so that time-outs, refused connections and cut-off responses are told apart and reported exactly), and
// Foundation's URLSession (libcurl) for https://. Retries live in the caller (LmRemote.swift).
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A response: status, headers (lower-case names) and body.
struct HTTPResponse: Sendable {
    let status: Int
    let headers: [String: String]
    let body: Data
}

/// Why a request got no response.
enum HTTPClientError: Error, CustomStringConvertible {
    /// No connection: refused, unreachable, unknown host.
    case connect(String)
    /// No complete response within the time allowed.
    case timeout(Double)
    /// The connection ended before the response did.
    case closed(String)
    /// What came back is not HTTP.
    case malformed(String)
    /// A URL the client cannot use.
    case badURL(String)
    /// The sandbox refused a redirect.
    case refused(String)

    var description: String {
        switch self {
        case .connect(let m): return "cannot connect: \(m)"
        case .timeout(let s): return "no response within \(HTTPClientError.seconds(s)) s (timeout)"
        case .closed(let m): return "the connection closed before the response ended (\(m))"
        case .malformed(let m): return "malformed HTTP response: \(m)"
        case .badURL(let m): return m
        case .refused(let m): return m
        }
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }

    /// Whether trying again may help (the server may be starting, restarting or overloaded).
    var retryable: Bool {
        switch self {
        case .connect, .timeout, .closed: return true
        case .malformed, .badURL, .refused: return false
        }
    }
}

enum HTTPClient {
    /// Sends one request and reads the whole response, within `timeout` seconds in all.
    /// Where a request to `url` connects: the host (an IPv6 address without its brackets) and port, as `send`
    /// reads them (so that a check of the target and the connection agree), and the path it asks for.
    static func target(_ url: String) throws -> (host: String, port: Int, path: String, authority: String) {
        if url.hasPrefix("https://") {
            guard let u = URL(string: url), var host = u.host, !host.isEmpty else {
                throw HTTPClientError.badURL("URL '\(url)' has no usable host")
            }
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, u.port ?? 443, u.path, host)
        }
        guard url.hasPrefix("http://") else { throw HTTPClientError.badURL("URL '\(url)' is not http:// or https://") }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = authority, port = "80"
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {      // [::1]:8080
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { port = String(after.dropFirst()) } else if !after.isEmpty { port = "" }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon]); port = String(authority[authority.index(after: colon)...])
        }
        guard !host.isEmpty, let p = Int(port), (1...65535).contains(p) else {
            throw HTTPClientError.badURL("URL '\(url)' has no usable host and port")
        }
        return (host, p, path, authority)
    }

    /// Sends one request and reads the whole response, within `timeout` seconds in all. `allow` (the sandbox's
    /// network grant) decides whether an https redirect may be followed; plain http:// never follows one.
    static func send(method: String, url: String, headers: [(String, String)], body: Data?,
                     timeout: Double, allow: (@Sendable (String, Int) -> String?)? = nil) throws -> HTTPResponse {
        if url.hasPrefix("https://") {
            return try sendWithURLSession(method: method, url: url, headers: headers, body: body, timeout: timeout, allow: allow)
        }
        let t = try target(url)
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try connect(host: t.host, port: String(t.port), deadline: deadline, timeout: timeout)
        defer { Glibc.close(fd) }
        var head = "\(method) \(t.path) HTTP/1.1\r\nHost: \(t.authority)\r\nConnection: close\r\nAccept: */*\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var out = Data(head.utf8)
        if let body { out.append(body) }
        try write(fd, out, deadline: deadline, timeout: timeout)
        return try readResponse(fd, deadline: deadline, timeout: timeout)
    }

    /// Milliseconds left before `deadline` (at least 0).
    private static func remaining(_ deadline: Date) -> Int32 {
        Int32(max(0, min(Double(Int32.max), deadline.timeIntervalSinceNow * 1000)))
    }

    private static func connect(host: String, port: String, deadline: Date, timeout: Double) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, port, &hints, &res)
        guard rc == 0, let first = res else {
            throw HTTPClientError.connect("cannot resolve host '\(host)': \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        var lastError = "no address for '\(host)'"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd < 0 { continue }
            let flags = fcntl(fd, F_GETFL, 0)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var r = Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r != 0 && errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let n = poll(&p, 1, remaining(deadline))
                if n == 0 { Glibc.close(fd); throw HTTPClientError.timeout(timeout) }
                var err: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                r = err == 0 ? 0 : -1
                if err != 0 { errno = err }
            }
            if r == 0 {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            lastError = String(cString: strerror(errno)).lowercased()
            Glibc.close(fd)
        }
        throw HTTPClientError.connect(lastError)
    }

    private static func write(_ fd: Int32, _ data: Data, deadline: Date, timeout: Double) throws {
        try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var off = 0
            while off < b.count {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, remaining(deadline)) == 0 { throw HTTPClientError.timeout(timeout) }
                let n = Glibc.send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { throw HTTPClientError.closed(String(cString: strerror(errno)).lowercased()) }
                off += n
            }
        }
    }

    /// Reads until the body is complete (Content-Length, the last chunk, or the end of the connection).
    private static func readResponse(_ fd: Int32, deadline: Date, timeout: Double) throws -> HTTPResponse {
        var buf = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        var head: (status: Int, headers: [String: String], bodyStart: Int)? = nil
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, remaining(deadline))
            if ready == 0 { throw HTTPClientError.timeout(timeout) }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                if head == nil { throw HTTPClientError.closed(String(cString: strerror(errno)).lowercased()) }
                break
            }
            if n == 0 { break }
            buf.append(contentsOf: chunk[0..<n])
            if head == nil, let r = buf.range(of: Data("\r\n\r\n".utf8)) { head = try parseHead(buf[..<r.lowerBound], r.upperBound) }
            if let h = head, complete(buf, h.headers, from: h.bodyStart) { break }
        }
        guard let h = head else {
            throw buf.isEmpty ? HTTPClientError.closed("no response") : HTTPClientError.closed("the response head was cut off")
        }
        var body = Data(buf[h.bodyStart...])
        if h.headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            body = try dechunk(body)
        } else if let l = h.headers["content-length"].flatMap({ Int($0) }) {
            guard body.count >= l else { throw HTTPClientError.closed("\(body.count) of \(l) body bytes") }
            body = body.prefix(l)
        }
        return HTTPResponse(status: h.status, headers: h.headers, body: body)
    }

    private static func parseHead(_ d: Data, _ bodyStart: Int) throws -> (Int, [String: String], Int) {
        let text = String(decoding: d, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let status = lines.removeFirst().split(separator: " ")
        guard status.count >= 2, status[0].hasPrefix("HTTP/"), let code = Int(status[1]) else {
            throw HTTPClientError.malformed("status line '\(text.prefix(60))'")
        }
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        return (code, headers, bodyStart)
    }

    private static func complete(_ buf: Data, _ headers: [String: String], from start: Int) -> Bool {
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            return buf.count - start >= 5 && buf.suffix(5) == Data("0\r\n\r\n".utf8)
        }
        if let l = headers["content-length"].flatMap({ Int($0) }) { return buf.count - start >= l }
        return false
    }

    private static func dechunk(_ d: Data) throws -> Data {
        var out = Data()
        var i = d.startIndex
        let crlf = Data("\r\n".utf8)
        while i < d.endIndex {
            guard let r = d.range(of: crlf, in: i..<d.endIndex) else { throw HTTPClientError.closed("a chunk was cut off") }
            let sizeText = String(decoding: d[i..<r.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw HTTPClientError.malformed("bad chunk size '\(sizeText)'")
            }
            if size == 0 { return out }
            let start = r.upperBound
            guard d.endIndex - start >= size else { throw HTTPClientError.closed("a chunk was cut off") }
            out.append(d[start..<(start + size)])
            i = start + size + 2
        }
        throw HTTPClientError.closed("the last chunk did not come")
    }

    /// https:// through URLSession (libcurl does the TLS). URLSession follows redirects, asking `allow` first (the
    /// tests send http:// through here too, to see a redirect refused).
    static func sendWithURLSession(method: String, url: String, headers: [(String, String)], body: Data?,
                                timeout: Double, allow: (@Sendable (String, Int) -> String?)?) throws -> HTTPResponse {
        guard let u = URL(string: url) else { throw HTTPClientError.badURL("URL '\(url)' does not parse") }
        var req = URLRequest(url: u, timeoutInterval: timeout)
        req.httpMethod = method
        req.httpBody = body
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        final class Box: @unchecked Sendable { var result: Result<HTTPResponse, Error>? }
        let box = Box(), done = DispatchSemaphore(value: 0)
        // Under the sandbox, a redirect is followed only to a granted host (the refusal is kept and raised).
        let guardian = allow.map { RedirectGuard(allow: $0) }
        let session = guardian.map { URLSession(configuration: .ephemeral, delegate: $0, delegateQueue: nil) } ?? URLSession.shared
        defer { if guardian != nil { session.finishTasksAndInvalidate() } }
        let task = session.dataTask(with: req) { data, response, error in
            if let refused = guardian?.refused {
                box.result = .failure(HTTPClientError.refused(refused))
            } else if let error {
                let e = error as NSError
                box.result = .failure(e.code == NSURLErrorTimedOut ? HTTPClientError.timeout(timeout)
                                      : HTTPClientError.connect(e.localizedDescription))
            } else if let r = response as? HTTPURLResponse {
                var h: [String: String] = [:]
                for (k, v) in r.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
                box.result = .success(HTTPResponse(status: r.statusCode, headers: h, body: data ?? Data()))
            } else {
                box.result = .failure(HTTPClientError.malformed("no HTTP response"))
            }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + timeout + 1) == .timedOut { task.cancel(); throw HTTPClientError.timeout(timeout) }
        return try box.result!.get()
    }
}

/// Follows an https redirect only where the sandbox's grant allows (`allow` gives the refusal, or nil).
final class RedirectGuard: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    let allow: @Sendable (String, Int) -> String?
    private let lock = NSLock()
    private var refusal: String?
    var refused: String? { lock.withLock { refusal } }

    init(allow: @escaping @Sendable (String, Int) -> String?) { self.allow = allow }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        guard let u = request.url, let host = u.host else { completionHandler(nil); return }
        let h = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let why = allow(h, u.port ?? (u.scheme == "https" ? 443 : 80)) {
            lock.withLock { refusal = "redirect to \(u.absoluteString): " + why }
            completionHandler(nil)
        } else {
            completionHandler(request)
        }
    }
}
