#if canImport(Glibc)
    import Glibc
#endif

/// The little file access configuration loading needs, without full Foundation.
public enum FileSystem {
    public struct ReadError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public static func readText(_ path: String) throws(ReadError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// The file's bytes; with `limit`, at most `limit + 1` are read, so an oversized file is seen without
    /// reading it whole.
    public static func readBytes(_ path: String, limit: Int = 1 << 40) throws(ReadError) -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw ReadError(path: path, reason: String(cString: strerror(errno)))
        }
        defer { fclose(file) }
        if isDirectory(path) { throw ReadError(path: path, reason: "is a folder, not a file") }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count <= limit {
            let n = fread(&buffer, 1, buffer.count, file)
            if n > 0 { bytes.append(contentsOf: buffer[0..<min(n, limit - bytes.count + 1)]) }
            if n < buffer.count {
                if ferror(file) != 0 { throw ReadError(path: path, reason: String(cString: strerror(errno))) }
                break
            }
        }
        return bytes
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Names in a directory, sorted; empty when it cannot be read.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            // Read d_name in place, up to its NUL: glibc sizes each entry to its name, so copying the whole
            // 256-byte field read past the end of the buffer (found by FuzzConfig under AddressSanitizer).
            let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
            let name = String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The canonical path of an existing file (symlinks resolved), else the path as given.
    public static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `path` with `//`, `.` and `..` folded away lexically (`/dev//ttyUSB0`, `/dev/./ttyUSB0` and
    /// `/tmp/../dev/ttyUSB0` are all `/dev/ttyUSB0`); a relative path stays relative.
    public static func lexicallyNormalized(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." {
                parts.removeLast()
            } else if part == ".." && absolute {
                continue
            } else {
                parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// One spelling per file: lexically normalised, then with symlinks resolved when the path exists.
    public static func identity(_ path: String) -> String {
        canonical(lexicallyNormalized(path))
    }

    /// What is wrong with `folder` as a place to create files, or nil when it is a writable folder.
    public static func folderProblem(_ folder: String) -> String? {
        var st = stat()
        guard stat(folder, &st) == 0 else {
            return errno == ENOENT ? "does not exist" : String(cString: strerror(errno))
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "is not a folder" }
        guard access(folder, W_OK | X_OK) == 0 else { return "is not writable by this user (uid \(getuid()))" }
        return nil
    }

    /// What `stat` says of a path that decides whether a secret may be read from it.
    public struct Status: Sendable {
        public var isRegularFile: Bool
        /// The permission bits (`0o777` and the set-id bits).
        public var permissions: UInt32
        public var owner: UInt32
    }

    /// The status of `path` (symlinks followed), or the reason it cannot be had.
    public static func status(_ path: String) -> Result<Status, ReadError> {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return .failure(ReadError(path: path, reason: String(cString: strerror(errno))))
        }
        return .success(
            Status(
                isRegularFile: st.st_mode & S_IFMT == S_IFREG, permissions: UInt32(st.st_mode) & 0o7777,
                owner: UInt32(st.st_uid)))
    }

    /// The user this process acts as (its effective uid).
    public static var effectiveUser: UInt32 { UInt32(geteuid()) }

    /// The permission bits of an existing file, or nil.
    public static func mode(_ path: String) -> UInt32? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt32(st.st_mode) & 0o7777
    }

    public static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `path` resolved against `base` when relative.
    public static func resolve(_ path: String, relativeTo base: String) -> String {
        path.hasPrefix("/") ? path : "\(base)/\(path)"
    }

    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
