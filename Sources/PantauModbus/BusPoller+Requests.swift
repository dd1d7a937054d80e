import PantauCore

/// A remote command for the thread that owns a bus: nothing else touches the bus's Modbus context.
/// The completion runs on the bus thread and must hand over quickly.
public enum BusRequest: Sendable {
    /// Polls the device now, through the normal path (its telemetry is published as usual); nil for a device
    /// this bus does not poll.
    case readNow(device: String, done: @Sendable (DevicePoll?) -> Void)
    /// Writes registers (or a coil from a 0/1 word) and reads them back.
    case write(
        device: String, table: RegisterTable, address: Int, words: [UInt16],
        done: @Sendable (Result<[UInt16], ModbusError>) -> Void)
}

/// A poll interval that holds until a wall-clock time.
struct TemporaryInterval: Sendable {
    var interval: Interval
    var until: UnixMillis
}

extension BusPoller {
    /// Queues a request for the bus thread and wakes it.
    public func submit(_ request: BusRequest) {
        shared.withLock { $0.requests.append(request) }
        wake.signal()
    }

    /// Polls `device` every `interval` until `until` (wall clock), then at its configured interval again.
    public func setTemporaryPollInterval(device: String, _ interval: Interval, until: UnixMillis) {
        shared.withLock { $0.temporary[device] = TemporaryInterval(interval: interval, until: until) }
        wake.signal()
    }
}
