/// Raw register and bit contents of one device, by table and 0-based address, as read in one poll.
public struct RegisterImage: Sendable, Hashable {
    public var tables: [RegisterTable: [Int: UInt16]]

    public init(_ tables: [RegisterTable: [Int: UInt16]] = [:]) { self.tables = tables }

    public subscript(table: RegisterTable, address: Int) -> UInt16? {
        get { tables[table]?[address] }
        set { tables[table, default: [:]][address] = newValue }
    }

    /// Stores `words` starting at `address`.
    public mutating func store(_ words: [UInt16], table: RegisterTable, at address: Int) {
        for (i, w) in words.enumerated() { self[table, address + i] = w }
    }
}

/// Turns raw registers into engineering values. Written in Swift from bit patterns, never with libmodbus helpers.
public enum RegisterDecoder {
    /// Decodes every point of `profile` present in `image`. A point whose registers are missing is `.deviceError`.
    public static func decode(
        profile: DeviceProfile, image: RegisterImage, device: String, acquiredAt: UnixMillis
    ) -> [Reading] {
        fatalError("RegisterDecoder.decode: not implemented yet")
    }
}

/// The inverse of the decoder, for the simulator and tests: engineering value to raw registers.
public enum RegisterEncoder {
    /// The registers (or one 0/1 bit) that decode to `value` for `point` (decimalsFrom assumed 0 decimals).
    public static func encode(point: PointSpec, value: PointValue) -> [UInt16] {
        fatalError("RegisterEncoder.encode: not implemented yet")
    }
}

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

    public var description: String { "FC\(table.readFunctionCode) \(table.rawValue) \(address)+\(count)" }
}

/// Plans the fewest read transactions that cover a device's points within its constraints.
public enum ReadPlanner {
    public static func plan(points: [PointSpec], timing: ProfileTiming) -> [ReadRequest] {
        fatalError("ReadPlanner.plan: not implemented yet")
    }
}
