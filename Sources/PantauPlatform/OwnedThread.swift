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

    /// The stack reserved for each of our threads. glibc's default is the `ulimit -s` of the process, usually
    /// 8 MiB: with a thread per bus that reserves hundreds of MiB of address space (a 32-bit board has 3 GiB) for
    /// loops whose deepest call (SQLite, a TLS handshake in libmosquitto, a libmodbus read) needs well under
    /// 100 KiB. Only touched pages are resident either way, so this changes the virtual size, not the RSS.
    public static let stackBytes = 1 << 20

    /// Starts `body` on a new thread. A process that cannot create a thread at startup cannot run; it stops here.
    public init(_ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, Self.stackBytes)
        let rc = pthread_create(
            &thread, &attributes,
            { raw in
                Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, start)
        precondition(rc == 0, "pthread_create failed with \(rc): the process is out of threads or memory")
        handle = Mutex(thread)
    }

    /// Lets the thread finish on its own, for fire-and-forget work; `join` then returns at once.
    public func detach() {
        guard let thread = takeHandle() else { return }
        pthread_detach(thread)
    }

    /// Waits for the thread to finish; later calls return at once.
    public func join() {
        guard let thread = takeHandle() else { return }
        pthread_join(thread, nil)
    }

    /// The handle for the one caller that detaches or joins the thread; nil for every later call.
    private func takeHandle() -> pthread_t? {
        handle.withLock { h in
            defer { h = nil }
            return h
        }
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
