import Logging
import PantauCore

/// The bus thread's side of a poller: owns the transport and the schedule. Used by one thread only.
final class BusWorker {
    private struct Entry {
        var config: DeviceConfig
        var requests: [ReadRequest]
        var nextDue: UnixMillis
    }

    private enum Outcome {
        case words([UInt16])
        case failed(ModbusError)
    }

    private let poller: BusPoller
    private let silenceMicros: Int
    private var transport: (any ModbusTransport)?
    private var connected = false
    private var reconnectAtNanos: UInt64 = 0
    private var reconnectBackoff: ReconnectBackoff
    private var lastConnectionError: ModbusError?
    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private var generation = -1
    private var lastFrameEndNanos: UInt64 = 0
    private var currentTimeoutMs: Int?
    private var lastOverrunLogNanos: UInt64?
    private var lastLoggedError: [String: ModbusError] = [:]
    private var link: LinkRecovery
    private var lastReopenReason: String?

    init(poller: BusPoller) {
        self.poller = poller
        reconnectBackoff = ReconnectBackoff(
            minSeconds: Double(poller.reconnectMinMs) / 1000, maxSeconds: Double(poller.reconnectMaxMs) / 1000)
        if case .rtu(let rtu) = poller.bus.transport {
            silenceMicros = rtu.effectiveInterFrameMicros
            link = LinkRecovery(isTCP: false)
        } else if case .rtuOverTCP(let settings) = poller.bus.transport {
            silenceMicros = settings.effectiveInterFrameMicros
            // RTU behind a DTU: a silent unit or a bad CRC is a unit's trouble, not the link's (flush, as on RS-485);
            // the transport itself reopens the TCP stream after consecutive failed transactions.
            link = LinkRecovery(isTCP: false)
        } else if case .tcp = poller.bus.transport {
            silenceMicros = 0
            link = LinkRecovery(isTCP: true)
        } else {
            // UART sensors and SDI-12: serial links, where a bad frame is flushed, not a reason to reopen the port.
            silenceMicros = 0
            link = LinkRecovery(isTCP: false)
        }
        sync()
    }

    var deviceCount: Int { order.count }

    /// Polls every device that is due now, in due order, and returns when the next one falls due.
    func runDue() -> UnixMillis {
        let revertAt = serveRequests()
        sync()
        let now = poller.clock.now()
        // Earliest due first; ties in configuration order, so a bus's polling sequence is predictable.
        let due = order.enumerated()
            .compactMap { index, name in entries[name].flatMap { $0.nextDue <= now ? ($0.nextDue, index, name) : nil } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            .map(\.2)
        for name in due {
            if poller.isStopping { break }
            poll(name)
        }
        return min(order.compactMap { entries[$0]?.nextDue }.min() ?? poller.clock.now() + 1000, revertAt)
    }

    /// Closes the transport; the bus thread ends after this.
    func shutdown() {
        transport?.close()
        transport = nil
        connected = false
        poller.shared.withLock { $0.connected = false }
    }

    /// Picks up device changes and interval overrides made by other threads.
    private func sync() {
        let now = poller.clock.now()
        let (devices, generation, intervals) = poller.shared.withLock { s in
            (s.devices, s.generation, s.devices.map { s.effectiveInterval($0, policy: poller.policy) })
        }
        if generation != self.generation {
            self.generation = generation
            var fresh: [String: Entry] = [:]
            for device in devices {
                let requests = poller.codec.plan(device.profile.points, device.timing)
                let due = entries[device.name]?.nextDue ?? now
                fresh[device.name] = Entry(config: device, requests: requests, nextDue: due)
            }
            entries = fresh
            order = devices.map(\.name)
        }
        for (device, interval) in zip(devices, intervals) {
            // A due time further away than one interval means the interval was shortened or the wall clock
            // jumped back (an NTP sync after boot): realign instead of waiting.
            if let due = entries[device.name]?.nextDue, due - now > interval.milliseconds {
                entries[device.name]!.nextDue = Self.slot(after: now, every: interval)
            }
        }
    }

    /// How late a poll due at `due` that ended at `finished` left its next slot, or nil when it ended in time.
    /// The next slot is the first multiple of `interval` after `due` (a first poll at start is off the grid),
    /// so the result is never negative.
    static func overrun(due: UnixMillis, finished: UnixMillis, every interval: Interval) -> Int64? {
        let nextSlot = slot(after: due, every: interval)
        guard slot(after: finished, every: interval) > nextSlot else { return nil }
        return finished - nextSlot
    }

    /// The next wall-clock multiple of `interval` after `time`, so polls line up with aggregation windows.
    static func slot(after time: UnixMillis, every interval: Interval) -> UnixMillis {
        let ms = max(1, interval.milliseconds)
        return (time / ms + 1) * ms
    }

    @discardableResult
    private func poll(_ name: String) -> DevicePoll? {
        guard let entry = entries[name] else { return nil }
        let device = entry.config
        let startedAt = poller.clock.now()
        let (probing, interval) = poller.shared.withLock { s in
            (s.health[name]?.isProbing ?? false, s.effectiveInterval(device, policy: poller.policy))
        }

        var image = RegisterImage()
        let failure = readAll(device, entry.requests, probing: probing, into: &image)
        let silent = failure.map { ($0.class == .link || $0.class == .connection) && image.tables.isEmpty } ?? false
        let readings = poller.codec.decode(device.profile, image, device.name, startedAt)
        let poll = DevicePoll(device: name, readings: readings, error: failure, acquiredAt: startedAt)

        let finished = poller.clock.now()
        let (transition, next) = poller.shared.withLock { s -> (DeviceHealth.Transition?, Interval) in
            var health = s.health[name] ?? DeviceHealth()
            let t = health.record(
                error: failure, answered: !silent, gotReadings: !image.tables.isEmpty, at: startedAt,
                policy: poller.policy)
            s.health[name] = health
            return (t, s.effectiveInterval(device, policy: poller.policy))
        }
        let nextDue = Self.slot(after: finished, every: next)
        entries[name]?.nextDue = nextDue
        // The poll ended after the slot that should have followed it: that slot is lost, the bus is overbooked.
        if next == interval, let late = Self.overrun(due: entry.nextDue, finished: finished, every: interval) {
            noteOverrun(device, late: late)
        }

        if failure == nil { lastLoggedError[name] = nil }
        if transition == .cameOnline {
            poller.logger.info("device online", metadata: deviceMetadata(device))
            poller.onAvailability(name, true, failure == nil ? "answered" : "answered with an exception")
        }
        poller.onPoll(poll)
        if transition == .wentOffline, let failure {
            var metadata = deviceMetadata(device)
            metadata["error"] = "\(failure)"
            metadata["probe_interval"] = "\(next)"
            poller.logger.warning(
                "device offline after \(poller.policy.failuresBeforeOffline) silent polls",
                metadata: metadata)
            poller.onAvailability(name, false, failure.description)
        }
        return poll
    }

    /// Reads every planned request into `image`; returns the first error, if any.
    private func readAll(
        _ device: DeviceConfig, _ requests: [ReadRequest], probing: Bool, into image: inout RegisterImage
    ) -> ModbusError? {
        do {
            _ = try transport(for: device)
        } catch {
            return error
        }
        var first: ModbusError?
        for (index, request) in requests.enumerated() {
            // An offline device gets one short attempt, so probing it costs its neighbours little.
            let probe = probing && index == 0
            let attempts = probe ? 1 : 1 + max(0, device.timing.retries)
            let timeout =
                probe
                ? min(device.timing.responseTimeoutMs, poller.policy.probeTimeoutMs) : device.timing.responseTimeoutMs
            let outcome = transact(request, device, attempts: attempts, timeoutMs: timeout) { t throws(ModbusError) in
                try t.read(request)
            }
            switch outcome {
            case .words(let words):
                image.store(words, table: request.table, at: request.address)
            case .failed(let error):
                first = first ?? error
                logFailure(device, request, error, probing: probing)
                switch error.class {
                case .config: continue
                case .busy, .link: return first
                case .connection:
                    dropConnection(error)
                    return first
                }
            }
        }
        return first
    }

    /// The open transport addressed to the device's unit, reopened first when the link was reset.
    private func transport(for device: DeviceConfig) throws(ModbusError) -> any ModbusTransport {
        let transport = try connectedTransport()
        try transport.setUnit(device.unitId)
        return transport
    }

    /// One transaction (`operation`, a read unless a command writes) with the bus's pacing, counters, watchdog
    /// deadline and link recovery; `request` names the registers in errors.
    private func transact(
        _ request: ReadRequest, _ device: DeviceConfig, attempts: Int, timeoutMs: Int,
        _ operation: (any ModbusTransport) throws(ModbusError) -> [UInt16]
    ) -> Outcome {
        var last = ModbusError(code: .other, bus: poller.bus.name)
        for attempt in 1...max(1, attempts) {
            let transport: any ModbusTransport
            do {
                transport = try self.transport(for: device)
            } catch {
                return .failed(placed(error, device, request))
            }
            if currentTimeoutMs != timeoutMs {
                transport.setResponseTimeout(ms: timeoutMs)
                currentTimeoutMs = timeoutMs
            }
            keepSilence(extraMicros: device.timing.interRequestDelayMs * 1000)
            let start = poller.clock.monotonicNanos()
            // The read is bounded by the response timeout (plus byte gaps): announce it, so it counts as progress.
            poller.ioDeadline.store(start + UInt64(max(0, timeoutMs) + 1000) * 1_000_000, ordering: .relaxed)
            defer { poller.ioDeadline.store(0, ordering: .relaxed) }
            do {
                let words = try operation(transport)
                let end = poller.clock.monotonicNanos()
                lastFrameEndNanos = end
                record(nil, start: start, end: end)
                _ = link.record(nil)
                return .words(words)
            } catch {
                let end = poller.clock.monotonicNanos()
                lastFrameEndNanos = end
                last = placed(error, device, request)
                record(last.code, start: start, end: end)
                switch link.record(last.code) {
                case .none: break
                case .flush:
                    // RTU has no transaction id: a late reply would answer the next request. Let the line go
                    // quiet for t3.5, then drop whatever arrived.
                    poller.pause(silenceMicros)
                    transport.flush()
                    lastFrameEndNanos = poller.clock.monotonicNanos()
                case .reconnect:
                    reopen(after: last)
                }
                guard last.class == .link, attempt < attempts else { break }
            }
        }
        return .failed(last)
    }

    /// Keeps the RTU inter-frame silence plus the device's own delay since the end of the last frame.
    private func keepSilence(extraMicros: Int) {
        let gap = UInt64(max(0, silenceMicros + extraMicros)) * 1000
        guard gap > 0 else { return }
        let now = poller.clock.monotonicNanos()
        let since = now > lastFrameEndNanos ? now - lastFrameEndNanos : 0
        if since < gap { poller.pause(Int((gap - since + 999) / 1000)) }
    }

    /// Warns when a device's failure changes; a repeat (a profile error every poll, a dead device's probes) is
    /// only debug, so a broken device cannot flood the journal.
    private func logFailure(_ device: DeviceConfig, _ request: ReadRequest, _ error: ModbusError, probing: Bool) {
        let metadata = errorMetadata(device, request, error)
        if probing || lastLoggedError[device.name] == error {
            poller.logger.debug("read failed again", metadata: metadata)
        } else {
            poller.logger.warning("read failed", metadata: metadata)
        }
        lastLoggedError[device.name] = error
    }

    private func record(_ code: ModbusError.Code?, start: UInt64, end: UInt64) {
        let duration = end > start ? end - start : 0
        poller.shared.withLock { s in
            s.counters.transactions += 1
            s.counters.busyNanos += duration
            switch code {
            case nil:
                s.counters.successes += 1
                s.counters.responseNanos += duration
            case .timeout?: s.counters.timeouts += 1
            case .badCRC?: s.counters.crcErrors += 1
            default: s.counters.otherErrors += 1
            }
            s.lastProgressNanos = end
        }
    }

    private func connectedTransport() throws(ModbusError) -> any ModbusTransport {
        if connected, let transport { return transport }
        let now = poller.clock.monotonicNanos()
        if now < reconnectAtNanos {
            throw lastConnectionError
                ?? ModbusError(code: .connection, message: "waiting to reconnect", bus: poller.bus.name)
        }
        do throws(ModbusError) {
            let transport: any ModbusTransport
            if let existing = self.transport {
                transport = existing
            } else {
                transport = try poller.transportFactory(poller.bus)
            }
            self.transport = transport
            try transport.connect()
            connected = true
            link.reset()
            currentTimeoutMs = nil
            if lastConnectionError != nil { poller.logger.info("bus connection restored") }
            lastConnectionError = nil
            reconnectBackoff.reset()
            poller.shared.withLock { $0.connected = true }
            return transport
        } catch {
            dropConnection(error)
            throw error
        }
    }

    /// Closes the transport and schedules a reconnect with exponential backoff, never later than the soonest
    /// poll or probe of a device on this bus (so a device that comes back, or one a flood alert polls fast, is
    /// not kept waiting by the connection's own backoff).
    private func dropConnection(_ error: ModbusError) {
        transport?.close()
        connected = false
        link.reset()
        let soonest = poller.shared.withLock { s in
            s.connected = false
            return s.devices.map { s.effectiveInterval($0, policy: poller.policy).milliseconds }.min()
        }
        // Not jittered: the bus has one owner, so there is no crowd of clients to spread out.
        let backoff = Int64((reconnectBackoff.nextDelay(jitter: 1) * 1000).rounded())
        let delay = max(1, min(backoff, soonest ?? backoff))
        poller.logger.warning(
            "bus connection failed; reopening later",
            metadata: ["error": "\(error)", "retry_in_ms": "\(delay)"])
        lastConnectionError = error
        reconnectAtNanos = poller.clock.monotonicNanos() + UInt64(delay) * 1_000_000
    }

    /// Closes a TCP connection that timed out repeatedly or went out of step; the next transaction opens a new
    /// one at once (no backoff: the peer was reachable).
    private func reopen(after error: ModbusError) {
        transport?.close()
        connected = false
        link.reset()
        poller.shared.withLock {
            $0.connected = false
            $0.counters.reopens += 1
        }
        let reason =
            error.code == .timeout
            ? "\(LinkRecovery.timeoutsBeforeReconnect) timeouts in a row" : "an invalid or mismatched reply"
        let metadata: Logger.Metadata = ["error": "\(error)", "reason": "\(reason)"]
        if lastReopenReason == reason {
            poller.logger.debug("reopening the bus connection", metadata: metadata)
        } else {
            poller.logger.warning("reopening the bus connection", metadata: metadata)
        }
        lastReopenReason = reason
    }

    private func noteOverrun(_ device: DeviceConfig, late: Int64) {
        poller.shared.withLock { $0.counters.overruns += 1 }
        let now = poller.clock.monotonicNanos()
        if let last = lastOverrunLogNanos, now - last < poller.overrunLogEveryNanos { return }
        lastOverrunLogNanos = now
        var metadata = deviceMetadata(device)
        metadata["late_ms"] = "\(late)"
        poller.logger.warning(
            "poll overran its interval: the bus cannot keep this schedule (fewer points, longer interval, faster baud)",
            metadata: metadata)
    }

    /// A transport may not know the bus or register; the poller does.
    private func placed(_ error: ModbusError, _ device: DeviceConfig, _ request: ReadRequest) -> ModbusError {
        var e = error
        if e.bus.isEmpty { e.bus = poller.bus.name }
        e.unit = e.unit ?? device.unitId
        e.table = e.table ?? request.table
        e.address = e.address ?? request.address
        e.count = e.count ?? request.count
        return e
    }

    private func deviceMetadata(_ device: DeviceConfig) -> Logger.Metadata {
        ["device": "\(device.name)", "unit": "\(device.unitId)"]
    }

    private func errorMetadata(
        _ device: DeviceConfig, _ request: ReadRequest, _ error: ModbusError
    ) -> Logger.Metadata {
        var metadata = deviceMetadata(device)
        metadata["register"] = "\(request)"
        metadata["code"] = "\(error.code.rawValue)"
        metadata["error"] = "\(error.message)"
        return metadata
    }
}

extension BusWorker {
    /// Carries out the remote commands queued since the last turn and reverts expired temporary intervals;
    /// returns when the next of those falls due (the bus thread wakes then to revert it).
    private func serveRequests() -> UnixMillis {
        let now = poller.clock.now()
        let (requests, revertAt) = poller.shared.withLock { s -> ([BusRequest], UnixMillis) in
            defer { s.requests = [] }
            let expired = s.temporary.filter { $0.value.until <= now }.map(\.key)
            for device in expired { s.temporary[device] = nil }
            return (s.requests, s.temporary.values.map(\.until).min() ?? .max)
        }
        for request in requests {
            switch request {
            case .readNow(let device, let done):
                // nil for a device this bus does not poll.
                done(poll(device))
            case .write(let device, let table, let address, let words, let done):
                done(write(device, table: table, address: address, words: words))
            }
        }
        return revertAt
    }

    /// Writes, then reads the same registers back: two transactions like a poll's (pacing, counters, watchdog
    /// deadline, link recovery), one attempt each (a write that timed out may still have been carried out).
    private func write(_ name: String, table: RegisterTable, address: Int, words: [UInt16])
        -> Result<[UInt16], ModbusError>
    {
        guard let device = entries[name]?.config else {
            return .failure(
                ModbusError(code: .invalidArgument, message: "no device \(name) on this bus", bus: poller.bus.name))
        }
        let readBack = ReadRequest(table: table, address: address, count: words.count)
        let timeout = device.timing.responseTimeoutMs
        let written = transact(readBack, device, attempts: 1, timeoutMs: timeout) { t throws(ModbusError) in
            try t.write(table: table, address: address, words: words)
            return words
        }
        if case .failed(let error) = written { return .failure(error) }
        let back = transact(readBack, device, attempts: 1, timeoutMs: timeout) { t throws(ModbusError) in
            try t.read(readBack)
        }
        switch back {
        case .words(let back): return .success(back)
        case .failed(let error): return .failure(error)
        }
    }
}
