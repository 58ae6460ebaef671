#if canImport(Glibc)
import Glibc
#endif

/// Wakes a worker thread early, or lets it sleep a while: the worker's time-outs run on the
/// monotonic clock. `DispatchSemaphore.wait(timeout:)` on Linux waits until a wall-clock date
/// (sem_timedwait), so a wall clock stepped back an hour (NTP, a faked date) stalls retries and
/// polls for that hour, and one stepped forward makes them spin.
final class WakeSignal {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// A signal not yet consumed by a wait: the next wait returns at once, as a semaphore's would.
    private var pending = false

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func signal() {
        pthread_mutex_lock(mutex)
        pending = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until signalled or `milliseconds` pass; true when signalled.
    @discardableResult
    func wait(milliseconds: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = Int(deadline.tv_nsec) + (max(milliseconds, 0) % 1000) * 1_000_000
        deadline.tv_sec += max(milliseconds, 0) / 1000 + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !pending {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
        }
        let signalled = pending
        pending = false
        return signalled
    }
}

// The flag is read and written only under the mutex; the pthread objects are made for threads.
extension WakeSignal: @unchecked Sendable {}
