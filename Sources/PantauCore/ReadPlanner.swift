/// One Modbus read transaction.
public struct ReadRequest: Sendable, Hashable, CustomStringConvertible {
    public var table: RegisterTable
    public var address: Int
    public var count: Int

    public init(table: RegisterTable, address: Int, count: Int) {
        self.table = table
        self.address = address
        self.count = count
    }

    /// Registers (or bits) after the last one this request reads.
    public var endAddress: Int { address + count }

    /// Whether this request reads every register (or bit) of `point`.
    public func covers(_ point: PointSpec) -> Bool {
        point.table == table && point.address >= address && point.address + point.span <= endAddress
    }

    public var description: String { "FC\(table.readFunctionCode) \(table.rawValue) \(address)+\(count)" }
}

/// Plans the fewest read transactions that cover a device's points within its constraints.
public enum ReadPlanner {
    /// The most registers one read may ask for (FC03/FC04), by the protocol.
    public static let protocolMaxRegisters = 125
    /// The most bits one read may ask for (FC01/FC02): the same 250-byte payload as 125 registers.
    public static let protocolMaxBits = 2000

    /// The fewest requests such that every point lies whole inside one of them, sorted by function code then
    /// address. A request spans at most `maxRegistersPerRead` registers and holes of at most `maxGap` unused
    /// registers; for coils and discrete inputs both limits count 16 bits per register (capped at 2000 bits).
    /// With `singlePointReads` every distinct point span is its own request. A point larger than the limit (which
    /// profile validation rejects) still gets one request of its own size rather than being dropped.
    public static func plan(points: [PointSpec], timing: ProfileTiming) -> [ReadRequest] {
        var requests: [ReadRequest] = []
        let tables = Dictionary(grouping: points, by: \.table)
        for table in RegisterTable.allCases.sorted(by: { $0.readFunctionCode < $1.readFunctionCode }) {
            guard let tablePoints = tables[table] else { continue }
            let spans = tablePoints.map { Span(start: $0.address, end: $0.address + max($0.span, 1)) }
            let reads = timing.singlePointReads ? Array(Set(spans)) : coalesce(spans, limits: Limits(table, timing))
            requests += reads.sorted().map { $0.request(table) }
        }
        return requests
    }

    /// One sweep in start order: a point joins the open request when the hole before it and the resulting length
    /// stay within the limits, otherwise it opens the next one. This is minimal even with overlapping points: a
    /// point rejected for length ends after every later point the open request could still have taken, so those
    /// lie inside it and ride along in the next request anyway. Among points starting together the longest comes
    /// first, so shorter ones ride inside it even when it is an oversized point that takes no company.
    static func coalesce(_ spans: [Span], limits: Limits) -> [Span] {
        var result: [Span] = []
        var open: Span?
        for span in spans.sorted(by: { ($0.start, -$0.end) < ($1.start, -$1.end) }) {
            // A point inside the open request joins even when that request is an oversized point on its own.
            if let current = open, span.start - current.end <= limits.maxGap,
                span.end <= current.end || span.end - current.start <= limits.maxCount
            {
                open = Span(start: current.start, end: max(current.end, span.end))
            } else {
                if let current = open { result.append(current) }
                open = span
            }
        }
        if let current = open { result.append(current) }
        return result
    }

    /// Half-open address range `start..<end` of a point or a request.
    struct Span: Hashable, Comparable {
        var start: Int
        var end: Int

        static func < (a: Span, b: Span) -> Bool { (a.start, a.end) < (b.start, b.end) }

        func request(_ table: RegisterTable) -> ReadRequest {
            ReadRequest(table: table, address: start, count: end - start)
        }
    }

    /// The effective per-table limits, in registers or bits.
    struct Limits {
        var maxCount: Int
        var maxGap: Int

        init(_ table: RegisterTable, _ timing: ProfileTiming) {
            let registers = max(1, min(timing.maxRegistersPerRead, ReadPlanner.protocolMaxRegisters))
            let gap = max(0, timing.maxGap)
            if table.isBitTable {
                maxCount = min(registers * 16, ReadPlanner.protocolMaxBits)
                maxGap = gap * 16
            } else {
                maxCount = registers
                maxGap = gap
            }
        }
    }
}

/// Puts the answers to a plan's requests back together into the image the decoder reads.
public enum ReadPlan {
    /// Stores each response at its request's address. Words beyond the request's count are ignored; a short
    /// response leaves the rest missing, so the points there decode as `.deviceError`.
    public static func assemble(_ responses: [(ReadRequest, [UInt16])]) -> RegisterImage {
        var image = RegisterImage()
        for (request, words) in responses {
            image.store(Array(words.prefix(max(request.count, 0))), table: request.table, at: request.address)
        }
        return image
    }
}
