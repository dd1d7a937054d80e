/// Every profile found in a list of folders, by id. A folder earlier in the list wins for a duplicate id.
public struct ProfileLibrary: Sendable {
    public private(set) var profiles: [String: DeviceProfile] = [:]
    /// Problems in profile files: a broken profile is reported, and only devices that use it are refused.
    public private(set) var problems: [String: ConfigurationError] = [:]
    public let directories: [String]

    public init(directories: [String]) {
        self.directories = directories
        for directory in directories {
            for name in FileSystem.list(directory) where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                let path = "\(directory)/\(name)"
                let id = String(name.prefix(upTo: name.lastIndex(of: ".")!))
                if profiles[id] != nil || problems[id] != nil { continue }
                switch ProfileParser.load(path: path) {
                case .success(let profile): profiles[id] = profile
                case .failure(let error): problems[id] = error
                }
            }
        }
    }

    public init(profiles: [DeviceProfile]) {
        directories = []
        for p in profiles { self.profiles[p.id] = p }
    }

    /// Adds the profiles of `other` whose ids this library does not have yet.
    public mutating func add(_ other: ProfileLibrary) {
        for (id, profile) in other.profiles where profiles[id] == nil && problems[id] == nil { profiles[id] = profile }
    }

    public subscript(id: String) -> DeviceProfile? { profiles[id] }

    /// Where shipped profiles are looked for when a config names none: the installed location, `$PANTAU_PROFILES`,
    /// and, for a build inside the source tree, the repository's `firmware-profiles/` above the executable.
    public static func defaultDirectories(executablePath: String?) -> [String] {
        var dirs: [String] = []
        if let env = FileSystem.environment("PANTAU_PROFILES") {
            dirs.append(contentsOf: env.split(separator: ":").map(String.init))
        }
        if let exe = executablePath {
            var dir = FileSystem.directoryOf(FileSystem.canonical(exe))
            for _ in 0..<5 {
                let candidate = "\(dir)/firmware-profiles"
                if FileSystem.isDirectory(candidate) {
                    dirs.append(candidate)
                    break
                }
                dir = FileSystem.directoryOf(dir)
            }
        }
        dirs.append("/usr/share/pantau/firmware-profiles")
        return dirs.filter(FileSystem.isDirectory)
    }
}
