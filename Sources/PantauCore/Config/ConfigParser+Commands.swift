import PantauPlatform
import PantauYAML

extension ConfigParser {
    /// `commands:` — `enabled` (default false), `key_file` (the HMAC key of signed commands, readable only by the
    /// service user), `window_seconds` (5-300, default 30) and `nonce_memory` (64-100000, default 4096).
    static func parseCommands(_ m: MappingReader, reader: NodeReader, baseDir: String) -> CommandsConfig {
        var config = CommandsConfig()
        config.listening = true
        config.enabled = m.bool("enabled") ?? false
        config.windowSeconds = m.int("window_seconds", range: 5...300) ?? config.windowSeconds
        config.nonceCapacity = m.int("nonce_memory", range: 64...100_000) ?? config.nonceCapacity
        if let node = m.value("key_file"), let text = reader.string(node, what: "'key_file' in \(m.what)") {
            switch CommandKey.load(path: FileSystem.resolve(text, relativeTo: baseDir)) {
            case .success(let key): config.key = key
            case .failure(let error): reader.error(node, error.message)
            }
        }
        m.finish()
        return config
    }

    /// A device's `writes:` — `allow` lets remote `write` commands set the writable points of its profile;
    /// `deny` (the default) refuses them.
    static func parseWrites(_ d: MappingReader, reader: NodeReader, profile: DeviceProfile?) -> Bool {
        let allowed = d.choice("writes", [("allow", true), ("deny", false)]) ?? false
        if allowed, let profile, !profile.points.contains(where: \.writable), let node = d.value("writes") {
            reader.error(node, "\(d.what) allows writes, but profile '\(profile.id)' marks no point writable")
        }
        return allowed
    }
}
