import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pthread of ours for blocking C calls (libmodbus, libmosquitto, SQLite), which must never run on Swift's
/// cooperative pool. Every long-running loop of the gateway runs on one, and is joined at shutdown.
public final class OwnedThread: Sendable {
    private final class Start {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    private let handle: Mutex<pthread_t?>

    /// Starts `body` on a new thread. A process that cannot create a thread at startup cannot run; it stops here.
    public init(_ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, start)
        precondition(rc == 0, "pthread_create failed with \(rc): the process is out of threads or memory")
        handle = Mutex(thread)
    }

    /// Lets the thread finish on its own, for fire-and-forget work; `join` then returns at once.
    public func detach() {
        guard let thread = handle.withLock({ h -> pthread_t? in defer { h = nil }; return h }) else { return }
        pthread_detach(thread)
    }

    /// Waits for the thread to finish; later calls return at once.
    public func join() {
        guard let thread = handle.withLock({ h -> pthread_t? in defer { h = nil }; return h }) else { return }
        pthread_join(thread, nil)
    }
}

/// Sleeps the calling thread (one of ours, never the cooperative pool), resuming after signals.
public func sleepMicros(_ micros: Int) {
    guard micros > 0 else { return }
    var request = timespec(tv_sec: micros / 1_000_000, tv_nsec: (micros % 1_000_000) * 1000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

public func sleepMillis(_ millis: Int) { sleepMicros(millis * 1000) }
