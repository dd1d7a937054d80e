import PantauCore
import PantauPlatform

/// Loads the configuration the way `run` and `check-config` both do, so they accept and refuse the same files.
public enum ConfigLoading {
    /// Profile folders searched after those a config lists: `$PANTAU_PROFILES`, the source tree's
    /// `firmware-profiles/` (for a build inside the repository) and `/usr/share/pantau/firmware-profiles`.
    public static func defaultProfileDirectories() -> [String] {
        ProfileLibrary.defaultDirectories(executablePath: CommandLine.arguments.first.flatMap(executablePath))
    }

    public static func load(_ path: String) -> Result<GatewayConfig, ConfigurationError> {
        ConfigParser.load(path: path, defaultProfileDirectories: defaultProfileDirectories())
    }

    /// The executable's path: argv[0] may be a bare name found through PATH.
    static func executablePath(_ argv0: String) -> String? {
        if argv0.contains("/") { return argv0 }
        let link = FileSystem.canonical("/proc/self/exe")
        return link == "/proc/self/exe" ? nil : link
    }
}
