import Glibc

/// A thread of ours (not the Swift concurrency pool) for blocking SQLite work; joined on shutdown.
final class OwnedThread: Sendable {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    private let handle: pthread_t

    init(_ run: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(run)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { context in
                guard let context else { return nil }
                Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed with \(rc): the process is out of threads or memory")
        handle = thread
    }

    func join() { pthread_join(handle, nil) }
}
