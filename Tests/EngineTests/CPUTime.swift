import Foundation

/// CPU seconds the calling thread spends in `body`. The tests that bound how long a step takes measure this, not
/// the wall clock: other processes on a loaded machine take turns on the cores without adding to it (a busy
/// sibling hyperthread or shared cache still can, by a factor well under 2). Work handed to other threads is not
/// counted, so only single-threaded steps are measured this way.
func threadCPUSeconds(_ body: () throws -> Void) rethrows -> Double {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start)
    try body()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end)
    return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
}
