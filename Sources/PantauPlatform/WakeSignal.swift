import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A pipe that one thread signals and another waits on in `poll()` beside its sockets, so a consumer sleeps
/// until there is work instead of waking on a timer. Signals coalesce: many before one `drain()` write one byte.
public final class WakeSignal: Sendable {
    /// The descriptor to poll for `POLLIN` (the pipe's read end); owned by this object and closed at deinit.
    public let fd: Int32
    private let writeEnd: Int32
    private let armed = Atomic<Bool>(false)

    /// A process that cannot create a pipe at startup cannot run; it stops here.
    public init() {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0, "pipe failed with errno \(errno)")
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        fd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(fd)
        close(writeEnd)
    }

    /// Wakes the waiter; cheap when a wake is already pending.
    public func signal() {
        guard !armed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var one: UInt8 = 1
        _ = write(writeEnd, &one, 1)
    }

    /// Clears the pending wake; call before looking for work, so a signal that comes after is not lost. The pipe
    /// is emptied before the flag is cleared: cleared first, a signal landing in between would write a byte this
    /// read swallows and leave the flag set, and every later signal would be skipped.
    public func drain() {
        // A pipe read returns what the pipe holds, up to the size asked: a short read means it is empty now (one
        // system call per wake instead of a second one that fails with EAGAIN). No heap buffer on this path.
        var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        let size = MemoryLayout.size(ofValue: bytes)
        while withUnsafeMutableBytes(of: &bytes, { read(fd, $0.baseAddress, size) }) == size {}
        armed.store(false, ordering: .sequentiallyConsistent)
    }

    /// Waits until signalled or `timeoutMs` passed (-1: no limit); true when signalled. For threads with nothing
    /// else to poll.
    @discardableResult
    public func wait(timeoutMs: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, timeoutMs) > 0
    }
}
