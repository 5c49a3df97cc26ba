// A small persistent pool in ggml's style: workers spin briefly on a generation counter, then sleep, so that the
// hundreds of parallel sections of one token cost microseconds each, and an idle REPL costs nothing.
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs one closure on every thread of the pool, the caller being thread 0.
public final class ThreadPool: @unchecked Sendable {
    /// Number of threads, the caller included.
    public let threadCount: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var job: ((Int) -> Void)? = nil
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var threads: [pthread_t] = []

    /// A pool of `threads` threads (at least 1); `threads - 1` workers are started.
    public init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        for i in 1..<threadCount {
            let box = Unmanaged.passRetained(WorkerArg(pool: self, index: i))
            var t = pthread_t()
            pthread_create(&t, nil, { raw in
                let arg = Unmanaged<WorkerArg>.fromOpaque(raw!).takeRetainedValue()
                arg.pool?.workerLoop(arg.index)
                return nil
            }, box.toOpaque())
            self.threads.append(t)
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(&mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    private final class WorkerArg {
        weak var pool: ThreadPool?
        let index: Int
        init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
    }

    /// Calls `body(t)` once for each thread index `t` in `0..<threadCount`, concurrently, and returns when all are done.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        withoutActuallyEscaping(body) { b in
            job = b
            pending.store(threadCount - 1, ordering: .relaxed)
            pthread_mutex_lock(&mutex)
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
            b(0)
            while pending.load(ordering: .acquiring) != 0 { spinPause() }
            job = nil
        }
    }

    /// Splits `0..<count` into one contiguous slice per thread.
    public func parallelFor(_ count: Int, _ body: (Range<Int>) -> Void) {
        if count == 0 { return }
        let n = min(threadCount, count)
        if n == 1 { body(0..<count); return }
        run { t in
            guard t < n else { return }
            let lo = t * count / n, hi = (t + 1) * count / n
            if lo < hi { body(lo..<hi) }
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            var g = generation.load(ordering: .acquiring)
            while g == seen && spins < 200_000 {
                spinPause(); spins += 1
                g = generation.load(ordering: .acquiring)
            }
            if g == seen {
                pthread_mutex_lock(&mutex)
                while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(&cond, &mutex) }
                pthread_mutex_unlock(&mutex)
                g = generation.load(ordering: .acquiring)
            }
            seen = g
            if stopping.load(ordering: .acquiring) { return }
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}

/// A busy-wait step. (Swift cannot inline `_mm_pause` here, so this is a plain compiler barrier.)
@inline(never) func spinPause() {}
