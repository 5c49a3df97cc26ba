import XCTest
import Synchronization
@testable import Engine

final class ThreadPoolTests: XCTestCase {
    func testEveryIndexRunsOncePerCall() {
        let pool = ThreadPool(threads: 3)
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 3)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0, count: 3)
        for _ in 0..<1000 { pool.run { t in hits[t] += 1 } }
        XCTAssertEqual([hits[0], hits[1], hits[2]], [1000, 1000, 1000])
    }

    func testParallelForCoversTheRangeOnce() {
        let pool = ThreadPool(threads: 2)
        for count in [0, 1, 2, 3, 17, 1000] {
            let seen = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
            seen.initialize(repeating: 0, count: max(count, 1))
            pool.parallelFor(count) { r in for i in r { seen[i] += 1 } }
            XCTAssertTrue((0..<count).allSatisfy { seen[$0] == 1 }, "count \(count)")
            seen.deallocate()
        }
    }

    func testPoolsAreReleased() throws {
        // Dropping a pool stops and joins its workers (a REPL that loads models repeatedly must not pile up threads).
        // The threads are counted in /proc/self/task: without it the test fails, unless REFRAIN_SKIP_PROC_TESTS=1
        // makes it a skip.
        for _ in 0..<50 {
            let pool = ThreadPool(threads: 2)
            pool.run { _ in }
        }
        let tasks: Int
        do {
            tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count
        } catch {
            let message = "cannot count this process's threads: /proc/self/task unreadable (\(error))"
            if ProcessInfo.processInfo.environment["REFRAIN_SKIP_PROC_TESTS"] == "1" {
                throw XCTSkip(message + " (REFRAIN_SKIP_PROC_TESTS=1)")
            }
            XCTFail(message + "; set REFRAIN_SKIP_PROC_TESTS=1 to skip")
            return
        }
        XCTAssertGreaterThan(tasks, 0, "/proc/self/task lists no threads")
        XCTAssertLessThan(tasks, 40, "threads left running: \(tasks)")
    }
}
