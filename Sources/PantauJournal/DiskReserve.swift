import Glibc

/// Space set aside beside the journal and given back when the disk fills up.
///
/// SQLite must write before it can free anything: a checkpoint copies the WAL into the database file and a delete
/// appends to the WAL. On a disk that is completely full neither can run, so deleting old telemetry could not make
/// room. Releasing this file gives them the space; it is restored once the disk has room again.
struct DiskReserve {
    let path: String
    let bytes: Int

    init(journalPath: String, bytes: Int) {
        path = journalPath + "-reserve"
        self.bytes = max(bytes, 0)
    }

    var isEnabled: Bool { bytes > 0 }

    /// Allocates the reserve if it is missing; false when the disk has no room for it.
    func restore() -> Bool {
        guard isEnabled else { return false }
        var info = stat()
        if stat(path, &info) == 0 && Int(info.st_size) >= bytes { return true }
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        _ = fchmod(fd, 0o640)
        guard posix_fallocate(fd, 0, off_t(bytes)) == 0 else {
            _ = unlink(path)
            return false
        }
        return true
    }

    /// Gives the space back to the file system; true when there was a reserve to release.
    func release() -> Bool {
        isEnabled && unlink(path) == 0
    }

    /// The file system has room for the reserve and as much again, so restoring it will not fill the disk.
    func canRestore() -> Bool {
        guard isEnabled else { return false }
        var info = statvfs()
        guard statvfs(JournalFiles.parentDirectory(of: path), &info) == 0 else { return false }
        return Int(info.f_bavail) * Int(info.f_frsize) >= 2 * bytes
    }
}
