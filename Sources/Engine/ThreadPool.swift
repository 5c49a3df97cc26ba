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
    private let shared: Shared
    private var threads: [pthread_t] = []

    /// What the workers see. They hold this, not the pool, so that dropping the pool stops and joins them.
    private final class Shared: @unchecked Sendable {
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        var job: ((Int) -> Void)? = nil
        var mutex = pthread_mutex_t()
        var cond = pthread_cond_t()
        init() { pthread_mutex_init(&mutex, nil); pthread_cond_init(&cond, nil) }
        deinit { pthread_cond_destroy(&cond); pthread_mutex_destroy(&mutex) }

        /// Starts the next generation of work and wakes sleeping workers.
        func publish() {
            pthread_mutex_lock(&mutex)
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(&cond)
            pthread_mutex_unlock(&mutex)
        }

        func workerLoop(_ index: Int) {
            var seen = 0
            while true {
                var spins = 0
                var g = generation.load(ordering: .acquiring)
                while g == seen && spins < 200_000 {
                    spinPause(spins); spins += 1
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

    private final class WorkerArg {
        let shared: Shared
        let index: Int
        init(_ shared: Shared, _ index: Int) { self.shared = shared; self.index = index }
    }

    /// A pool of `threads` threads (at least 1); `threads - 1` workers are started.
    public init(threads: Int) {
        threadCount = max(1, threads)
        shared = Shared()
        for i in 1..<threadCount {
            let arg = Unmanaged.passRetained(WorkerArg(shared, i))
            var t = pthread_t()
            pthread_create(&t, nil, { raw in
                let arg = Unmanaged<WorkerArg>.fromOpaque(raw!).takeRetainedValue()
                arg.shared.workerLoop(arg.index)
                return nil
            }, arg.toOpaque())
            self.threads.append(t)
        }
    }

    deinit {
        shared.stopping.store(true, ordering: .releasing)
        shared.publish()
        for t in threads { pthread_join(t, nil) }
    }

    /// Calls `body(t)` once for each thread index `t` in `0..<threadCount`, concurrently, and returns when all are done.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        withoutActuallyEscaping(body) { b in
            shared.job = b
            shared.pending.store(threadCount - 1, ordering: .relaxed)
            shared.publish()
            b(0)
            var spins = 0
            while shared.pending.load(ordering: .acquiring) != 0 { spinPause(spins); spins += 1 }
            shared.job = nil
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
}

/// A busy-wait step: every 256th gives the core away, so that when there are more runnable threads than cores
/// (a loaded machine) the thread being waited for gets to run instead of losing whole time slices to spinners.
@inline(never) func spinPause(_ spins: Int) {
    if spins & 255 == 255 { sched_yield() }
}
