import PantauCore
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

extension ModbusSimulator {
    /// Serves one unit's framed UART profile on a tty (one end of a socat pty pair) as the sensor would: in
    /// passive mode each query is answered with one frame, in active mode a frame is sent every `periodMs`.
    /// The frame carries the unit's simulated values; a silent unit sends nothing.
    public func serveFrames(
        device: String, serial: SerialSettings, unit: Int, frame: FrameSpec, periodMs: Int = 1000
    ) throws(ModbusError) {
        let port = SerialPort(device: device, serial: serial, bus: "simulator")
        try port.open()
        logger.info(
            "simulator serving a framed UART sensor",
            metadata: ["device": "\(device)", "unit": "\(unit)", "mode": "\(frame.mode.rawValue)"])
        let handed = HandedPort(port: port)
        startThread { [self] in frameLoop(handed.port, unit: unit, frame: frame, periodMs: periodMs) }
    }

    private func frameLoop(_ port: SerialPort, unit: Int, frame: FrameSpec, periodMs: Int) {
        defer { port.close() }
        var received: [UInt8] = []
        let clock = SystemClock()
        var nextSend = clock.monotonicNanos()
        while !isStopping {
            let waitMs: Int
            if frame.mode == .active {
                let now = clock.monotonicNanos()
                if now >= nextSend {
                    send(port, unit: unit, frame: frame)
                    nextSend = now + UInt64(max(10, periodMs)) * 1_000_000
                }
                waitMs = min(100, Int((nextSend - min(nextSend, clock.monotonicNanos())) / 1_000_000) + 1)
            } else {
                waitMs = 100
            }
            guard let bytes = try? port.read(max: 256, timeoutMs: waitMs) else { return }
            received += bytes
            guard frame.mode == .passive, !frame.query.isEmpty else {
                received.removeAll()
                continue
            }
            // Answer each whole query; anything else (the setup command) is taken silently.
            while let range = received.firstRange(of: frame.query) {
                received.removeSubrange(received.startIndex..<range.upperBound)
                send(port, unit: unit, frame: frame)
            }
            if received.count > 512 { received.removeFirst(received.count - 64) }
        }
    }

    private func send(_ port: SerialPort, unit: Int, frame: FrameSpec) {
        guard case .image(let image) = lookup(unit: unit) else { return }
        let bytes = frame.build(registers: image.tables[.input] ?? [:])
        try? port.write(bytes)
    }
}

/// A serial port handed to the one thread that will use it.
private struct HandedPort: @unchecked Sendable {
    let port: SerialPort
}

extension Array where Element == UInt8 {
    fileprivate func firstRange(of needle: [UInt8]) -> Range<Int>? {
        guard !needle.isEmpty, count >= needle.count else { return nil }
        for i in 0...(count - needle.count) where Array(self[i..<(i + needle.count)]) == needle {
            return i..<(i + needle.count)
        }
        return nil
    }
}
