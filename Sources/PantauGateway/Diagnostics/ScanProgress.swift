/// The scan's progress line for a terminal: a bar, the count, what was found and the time left.
public enum ScanProgress {
    /// E.g. `[######------------------]  61/247  24%  2 found  1:04 left`; the time left is `--:--` until the first
    /// probe is done.
    public static func line(done: Int, total: Int, found: Int, elapsedNanos: UInt64, width: Int = 24) -> String {
        let fraction = total > 0 ? Double(min(done, total)) / Double(total) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
        let percent = Int((fraction * 100).rounded(.down))
        let left = remainingNanos(done: done, total: total, elapsedNanos: elapsedNanos).map { duration(nanos: $0) }
        let counter =
            String(repeating: " ", count: max(0, String(total).count - String(done).count)) + "\(done)/\(total)"
        return "\(bar) \(counter) \(percent)%  \(found) found  \(left ?? "--:--") left"
    }

    /// The time left if the remaining probes take as long on average as those done; nil before the first.
    public static func remainingNanos(done: Int, total: Int, elapsedNanos: UInt64) -> UInt64? {
        guard done > 0 else { return nil }
        guard done < total else { return 0 }
        return UInt64((Double(elapsedNanos) / Double(done) * Double(total - done)).rounded(.up))
    }

    /// `m:ss` below an hour, `h:mm:ss` above, rounded up to the next second so "0:00 left" means done.
    public static func duration(nanos: UInt64) -> String {
        let seconds = (nanos + 999_999_999) / 1_000_000_000
        let h = seconds / 3600
        let m = seconds / 60 % 60
        let s = seconds % 60
        let ss = s < 10 ? "0\(s)" : "\(s)"
        if h > 0 { return "\(h):\(m < 10 ? "0\(m)" : "\(m)"):\(ss)" }
        return "\(m):\(ss)"
    }
}
