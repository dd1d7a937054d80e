internal import CMalloc

/// The C allocator's settings for `pantau run` (issue 17), set by the gateway itself rather than by the unit file
/// alone, so a board started by hand or by another supervisor gets them too.
enum ProcessMemory {
    /// glibc gives each thread that allocates an arena of its own, up to eight per core, and an arena keeps the
    /// high-water mark of what its threads allocated. The gateway has a thread per bus that allocates a few
    /// kilobytes per poll: one arena for all of them is enough (the allocations are short and rare, so contention
    /// on its lock does not show), and it keeps what one thread frees reusable by the others.
    static let arenas: Int32 = 1

    /// Applies the settings; called first thing in `pantau run`, before any thread starts.
    static func configure() {
        _ = mallopt(M_ARENA_MAX, arenas)
    }

    /// Gives the heap's free pages back to the kernel (after start-up, which parses the configuration and the
    /// profiles and leaves most of what it allocated free).
    static func trim() {
        _ = malloc_trim(0)
    }
}
