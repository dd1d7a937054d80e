/// The release of this build, shown by `pantau --version`, in the status payload and in the health message.
public enum PantauVersion {
    public static let current = "0.1.0"
}

/// Exit codes from sysexits.h, so scripts and systemd can tell a bad config from a crash.
public enum ExitCode: Int32, Sendable {
    case ok = 0
    case failure = 1
    case usage = 64
    case dataError = 65
    case noInput = 66
    case unavailable = 69
    case software = 70
    case ioError = 74
    case tempFail = 75
    case config = 78
}
