import PantauPlatform

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

    /// Where shipped profiles are looked for after the folders a config lists, in order: `$PANTAU_PROFILES`
    /// (colon-separated), next to the executable (`<bin>/../share/pantau/firmware-profiles`, then
    /// `<bin>/firmware-profiles`), the installed `/usr/share/pantau/firmware-profiles`, and for a build inside the
    /// source tree the repository's `firmware-profiles/` up to five folders above the executable.
    /// Only the candidates that exist are returned.
    public static func defaultDirectories(executablePath: String?) -> [String] {
        var seen: Set<String> = []
        return defaultCandidates(executablePath: executablePath).filter {
            FileSystem.isDirectory($0) && seen.insert(FileSystem.identity($0)).inserted
        }
    }

    /// Every folder `defaultDirectories` looks at, existing or not, for messages that say where profiles were sought.
    public static func defaultCandidates(executablePath: String?) -> [String] {
        var dirs: [String] = []
        if let env = FileSystem.environment("PANTAU_PROFILES") {
            dirs.append(contentsOf: env.split(separator: ":").map(String.init))
        }
        var sourceTree: String?
        if let exe = executablePath {
            let bin = FileSystem.directoryOf(FileSystem.canonical(exe))
            dirs.append(FileSystem.lexicallyNormalized("\(bin)/../share/pantau/firmware-profiles"))
            dirs.append("\(bin)/firmware-profiles")
            var dir = FileSystem.directoryOf(bin)
            for _ in 0..<5 {
                let candidate = "\(dir)/firmware-profiles"
                if FileSystem.isDirectory(candidate) {
                    sourceTree = candidate
                    break
                }
                if dir == "/" { break }
                dir = FileSystem.directoryOf(dir)
            }
        }
        dirs.append(installedDirectory)
        if let sourceTree { dirs.append(sourceTree) }
        return dirs
    }

    /// Where the Debian package installs the shipped profiles.
    public static let installedDirectory = "/usr/share/pantau/firmware-profiles"

    /// The profile folders of this process when nothing was found: for "searched ..." messages.
    public static func describeSearch(_ directories: [String]) -> String {
        if !directories.isEmpty { return "searched \(directories.joined(separator: ", "))" }
        let exe = FileSystem.canonical("/proc/self/exe")
        let candidates = defaultCandidates(executablePath: exe == "/proc/self/exe" ? nil : exe)
        return "no profile folder was found: none was given and none of these exists: "
            + "\(candidates.joined(separator: ", ")) (add one with 'profiles:' in the configuration, --profile-dir "
            + "or $PANTAU_PROFILES)"
    }
}
