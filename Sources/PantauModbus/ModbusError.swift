import PantauCore

#if canImport(Glibc)
    import Glibc
#endif

/// A failed Modbus call: what went wrong, what the caller should do about it, and where (bus, unit, register).
public struct ModbusError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, from the errno libmodbus left behind.
    public enum Code: String, Sendable, Hashable {
        case illegalFunction = "illegal_function"
        case illegalAddress = "illegal_address"
        case illegalValue = "illegal_value"
        case deviceFailure = "device_failure"
        /// Exception 05 (acknowledge), 06 (busy) or 07 (negative acknowledge): the device is working on something.
        case busy
        /// Exception 0A/0B from a gateway: the device behind it did not answer.
        case gatewayPath = "gateway_path"
        case timeout
        case badCRC = "bad_crc"
        /// A malformed, mismatched or unexpected reply (wrong unit, wrong length, unknown exception).
        case badData = "bad_data"
        case connection
        case invalidArgument = "invalid_argument"
        case other
    }

    /// What the caller should do about an error.
    public enum Class: String, Sendable, Hashable {
        /// The request is wrong for this device (profile or config): retrying will not help.
        case config
        /// The device is alive but cannot serve now: try again at the next poll.
        case busy
        /// The device did not answer sensibly: count it towards marking it offline.
        case link
        /// The port or socket is gone: close and reopen it.
        case connection
    }

    public var code: Code
    /// The raw errno (system or libmodbus `EMB*`), 0 when the error did not come from a C call.
    public var errno: Int32
    public var message: String
    public var bus: String
    public var unit: Int?
    public var table: RegisterTable?
    public var address: Int?
    public var count: Int?

    public init(
        code: Code, errno: Int32 = 0, message: String? = nil, bus: String = "", unit: Int? = nil,
        table: RegisterTable? = nil, address: Int? = nil, count: Int? = nil
    ) {
        self.code = code
        self.errno = errno
        self.message = message ?? ModbusError.defaultMessage(code)
        self.bus = bus
        self.unit = unit
        self.table = table
        self.address = address
        self.count = count
    }

    /// Builds the error for a libmodbus call that failed with `errno`.
    public init(
        errno: Int32, bus: String, unit: Int? = nil, table: RegisterTable? = nil, address: Int? = nil,
        count: Int? = nil
    ) {
        let (code, message) = ModbusError.classify(errno: errno)
        self.init(
            code: code, errno: errno, message: message, bus: bus, unit: unit, table: table, address: address,
            count: count)
    }

    /// What to do about it.
    public var `class`: Class {
        switch code {
        case .illegalFunction, .illegalAddress, .illegalValue, .invalidArgument: return .config
        case .deviceFailure, .busy: return .busy
        case .gatewayPath, .timeout, .badCRC, .badData, .other: return .link
        case .connection: return .connection
        }
    }

    /// Where it happened, e.g. `bus rs485-1 unit 3 holding 100+4`.
    public var place: String {
        var parts: [String] = []
        if !bus.isEmpty { parts.append("bus \(bus)") }
        if let unit { parts.append("unit \(unit)") }
        if let table, let address {
            parts.append(count.map { "\(table.rawValue) \(address)+\($0)" } ?? "\(table.rawValue) \(address)")
        }
        return parts.joined(separator: " ")
    }

    public var description: String { place.isEmpty ? message : "\(place): \(message)" }
}

extension ModbusError {
    // libmodbus error numbers (modbus.h), spelled out because the header defines them as compound macros.
    static let noBase: Int32 = 112_345_678
    static let exceptionIllegalFunction = noBase + 1
    static let exceptionIllegalAddress = noBase + 2
    static let exceptionIllegalValue = noBase + 3
    static let exceptionServerFailure = noBase + 4
    static let exceptionAcknowledge = noBase + 5
    static let exceptionServerBusy = noBase + 6
    static let exceptionNegativeAcknowledge = noBase + 7
    static let exceptionMemoryParity = noBase + 8
    static let exceptionGatewayPath = noBase + 10
    static let exceptionGatewayTarget = noBase + 11
    static let badCRC = noBase + 12
    static let badData = noBase + 13
    static let badException = noBase + 14
    static let unknownException = noBase + 15
    static let tooManyData = noBase + 16
    static let badSlave = noBase + 17

    /// Maps an errno to a code and a message without `modbus_strerror`, which is not thread safe (libmodbus #468).
    static func classify(errno e: Int32) -> (Code, String) {
        switch e {
        case exceptionIllegalFunction:
            return (.illegalFunction, "illegal function (exception 01): the device does not support this function code")
        case exceptionIllegalAddress:
            return (.illegalAddress, "illegal data address (exception 02): check the register map in the profile")
        case exceptionIllegalValue:
            return (.illegalValue, "illegal data value (exception 03): the device rejects this count or value")
        case exceptionServerFailure, exceptionMemoryParity:
            return (.deviceFailure, "device failure (exception \(e - noBase)): the sensor reports an internal fault")
        case exceptionAcknowledge, exceptionServerBusy, exceptionNegativeAcknowledge:
            return (.busy, "device busy (exception 0\(e - noBase)): it will be asked again at the next poll")
        case exceptionGatewayPath:
            return (.gatewayPath, "gateway path unavailable (exception 0A): the gateway has no route to this unit")
        case exceptionGatewayTarget:
            return (.gatewayPath, "gateway target did not respond (exception 0B): check the unit id and its wiring")
        case badCRC:
            return (.badCRC, "CRC error in the reply: check termination, grounding, cable length and baud rate")
        case badData, badException, unknownException, badSlave:
            return (.badData, "malformed or mismatched reply (\(e - noBase)): two devices with one unit id, or noise")
        case tooManyData:
            return (.invalidArgument, "too many registers requested in one transaction")
        case ETIMEDOUT:
            return (.timeout, "no reply before the response timeout: check power, wiring (A/B), unit id and baud")
        case ECONNREFUSED:
            return (.connection, "connection refused: nothing listens on that host and port")
        case ECONNRESET, EPIPE, ENOTCONN, ESHUTDOWN:
            return (.connection, "connection lost (errno \(e)): it will be reopened")
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN:
            return (.connection, "host unreachable (errno \(e)): check the network path to the Modbus gateway")
        case EBADF:
            return (.connection, "port not open (EBADF)")
        case ENOENT, ENODEV, ENXIO:
            return (.connection, "serial device missing (errno \(e)): check the adapter is plugged in and its path")
        case EACCES, EPERM:
            return (.connection, "permission denied opening the port: add the service user to the dialout group")
        case EBUSY:
            return (.connection, "port busy: another program holds it")
        case EIO:
            return (.connection, "I/O error on the port: the adapter may have been unplugged")
        case EINVAL:
            return (.invalidArgument, "invalid argument passed to libmodbus")
        default:
            return (.other, "Modbus call failed with errno \(e)")
        }
    }

    static func defaultMessage(_ code: Code) -> String {
        switch code {
        case .illegalFunction: return classify(errno: exceptionIllegalFunction).1
        case .illegalAddress: return classify(errno: exceptionIllegalAddress).1
        case .illegalValue: return classify(errno: exceptionIllegalValue).1
        case .deviceFailure: return classify(errno: exceptionServerFailure).1
        case .busy: return classify(errno: exceptionServerBusy).1
        case .gatewayPath: return classify(errno: exceptionGatewayTarget).1
        case .timeout: return classify(errno: ETIMEDOUT).1
        case .badCRC: return classify(errno: badCRC).1
        case .badData: return classify(errno: badData).1
        case .connection: return "connection failed"
        case .invalidArgument: return "invalid argument"
        case .other: return "Modbus call failed"
        }
    }
}
