import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pthread of our own for blocking C calls, which must never run on Swift's cooperative pool.
final class OwnedThread: Sendable {
    private final class Start {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private let handle: Mutex<pthread_t?>

    /// Starts `body` on a new thread; nil when the system refuses one (the error is in errno).
    init?(body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            start.body()
            return nil
        }, start)
        guard rc == 0 else {
            Unmanaged<Start>.fromOpaque(start).release()
            return nil
        }
        handle = Mutex(thread)
    }

    /// Waits for the thread to finish; later calls return at once.
    func join() {
        guard let thread = handle.withLock({ h -> pthread_t? in defer { h = nil }; return h }) else { return }
        pthread_join(thread, nil)
    }
}

/// Sleeps the calling thread (one of ours, never the cooperative pool).
func sleepMicros(_ micros: Int) {
    guard micros > 0 else { return }
    var request = timespec(tv_sec: micros / 1_000_000, tv_nsec: (micros % 1_000_000) * 1000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
