// Several HTTP requests at once, as `lm.http` sends them: a time-out, retries with exponential backoff on 429, 5xx
// and lost connections, and a concurrency limit, over HTTPClient.
import Foundation

/// How `lm.http` sends: limits and the key's variable.
struct HTTPPolicy: Sendable {
    var timeout = 60.0
    var retries = 3
    var concurrency = 4
    /// The first retry waits this long (seconds); each later one twice the one before (or what Retry-After says).
    var backoff = 0.5
    /// The Authorization header's value, when a key is used.
    var authorization: String? = nil
    /// Under the sandbox: the refusal for a host and port (nil: allowed), for redirects.
    var allow: (@Sendable (String, Int) -> String?)? = nil
}

/// One request of a batch.
struct HTTPCall: Sendable {
    let method: String
    let url: String
    let body: Data?
}

/// A request's outcome after its retries.
struct HTTPOutcome: Sendable {
    var response: HTTPResponse?
    var error: HTTPClientError?
    var attempts = 0
    var seconds = 0.0
}

enum HTTPBatch {
    /// Sends `calls`, at most `policy.concurrency` at a time; each is retried on a lost connection, a time-out,
    /// 429 or 5xx, up to `policy.retries` times. Outcomes come back in the order of `calls`.
    static func run(_ calls: [HTTPCall], _ policy: HTTPPolicy) -> [HTTPOutcome] {
        final class Results: @unchecked Sendable {
            var items: [HTTPOutcome]
            let lock = NSLock()
            init(_ n: Int) { items = Array(repeating: HTTPOutcome(), count: n) }
        }
        let results = Results(calls.count)
        if calls.count == 1 {
            results.items[0] = send(calls[0], policy)
            return results.items
        }
        let slots = DispatchSemaphore(value: policy.concurrency)
        let group = DispatchGroup()
        for (i, call) in calls.enumerated() {
            slots.wait()
            group.enter()
            Thread.detachNewThread {
                let o = send(call, policy)
                results.lock.withLock { results.items[i] = o }
                slots.signal()
                group.leave()
            }
        }
        group.wait()
        return results.items
    }

    static func send(_ call: HTTPCall, _ policy: HTTPPolicy) -> HTTPOutcome {
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("User-Agent", "refrain")]
        if let a = policy.authorization { headers.append(("Authorization", a)) }
        var out = HTTPOutcome()
        let t0 = Date()
        while true {
            out.attempts += 1
            var wait = policy.backoff * pow(2, Double(out.attempts - 1))
            do {
                let r = try HTTPClient.send(method: call.method, url: call.url, headers: headers, body: call.body,
                                            timeout: policy.timeout, allow: policy.allow)
                out.response = r
                out.error = nil
                guard r.status == 429 || r.status >= 500 else { break }
                if let s = r.headers["retry-after"].flatMap(Double.init) { wait = min(max(s, 0), 60) }
            } catch let e as HTTPClientError {
                out.error = e
                out.response = nil
                if !e.retryable { break }
            } catch {
                out.error = .malformed("\(error)")
                break
            }
            if out.attempts > policy.retries { break }
            Thread.sleep(forTimeInterval: wait)
        }
        out.seconds = Date().timeIntervalSince(t0)
        return out
    }
}
