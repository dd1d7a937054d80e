import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

private let interruptRequested = Atomic<Bool>(false)

/// Ctrl-C for long diagnostic commands: the first SIGINT asks them to stop at the next safe point (between two
/// Modbus transactions) so they can print what they have; a second one ends the process at once.
public enum Interruption {
    /// Installs the SIGINT handler.
    public static func install() {
        signal(SIGINT) { _ in
            if interruptRequested.exchange(true, ordering: .relaxed) {
                signal(SIGINT, SIG_DFL)
                raise(SIGINT)
            }
        }
    }

    /// Whether SIGINT arrived since `install()`.
    public static var requested: Bool { interruptRequested.load(ordering: .relaxed) }

    /// Sleeps up to `milliseconds`, waking early when SIGINT arrives; returns false when interrupted.
    public static func sleep(milliseconds: Int) -> Bool {
        var left = milliseconds
        while left > 0 {
            if requested { return false }
            let step = min(left, 50)
            usleep(UInt32(step) * 1000)
            left -= step
        }
        return !requested
    }
}
