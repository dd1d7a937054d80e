import PantauCore

/// Parsing of `pantau raw` addresses and values.
public enum RawArguments {
    /// The 0-based protocol address from what was typed: as is, or minus one with `--one-based` (mbpoll's default).
    public static func protocolAddress(_ given: Int, oneBased: Bool) throws(DiagnosticsUsageError) -> Int {
        let address = oneBased ? given - 1 : given
        guard (0...65535).contains(address) else {
            let range = oneBased ? "1...65536 with --one-based" : "0...65535 (0-based; --one-based for 1-based)"
            throw DiagnosticsUsageError("address \(given) is outside \(range)")
        }
        return address
    }

    /// Register values: decimal 0...65535, negative down to -32768 (written as two's complement), or hex `0x04D2`.
    public static func registers(_ texts: [String]) throws(DiagnosticsUsageError) -> [UInt16] {
        var words: [UInt16] = []
        for text in texts {
            let lower = text.lowercased()
            let parsed = lower.hasPrefix("0x") ? Int(lower.dropFirst(2), radix: 16) : Int(lower)
            guard let value = parsed, (-32768...65535).contains(value) else {
                throw DiagnosticsUsageError(
                    "'\(text)' is not a register value", hint: "write 0...65535, -32768...-1 or hex like 0x04D2")
            }
            words.append(UInt16(truncatingIfNeeded: value))
        }
        return words
    }

    /// Coil values: 1/0, on/off or true/false.
    public static func coils(_ texts: [String]) throws(DiagnosticsUsageError) -> [Bool] {
        var bits: [Bool] = []
        for text in texts {
            switch text.lowercased() {
            case "1", "on", "true": bits.append(true)
            case "0", "off", "false": bits.append(false)
            default:
                throw DiagnosticsUsageError("'\(text)' is not a coil value", hint: "write 1, 0, on, off, true or false")
            }
        }
        return bits
    }
}

/// Registers read as every numeric type of their width in every standard byte order, rows by type and columns by
/// order, for a technician looking for the encoding of an undocumented register.
public struct InterpretationTable: Sendable {
    public var orders: [ByteOrder]
    public var rows: [(type: ValueType, values: [PointValue])]

    /// The table for 1, 2 or 4 registers; nil for any other count.
    public init?(words: [UInt16]) {
        let all = RegisterDecoder.interpretations(words: words)
        guard !all.isEmpty else { return nil }
        var orders: [ByteOrder] = []
        var rows: [(type: ValueType, values: [PointValue])] = []
        for entry in all {
            if !orders.contains(entry.order) { orders.append(entry.order) }
            if rows.last?.type != entry.type { rows.append((entry.type, [])) }
            rows[rows.count - 1].values.append(entry.value)
        }
        self.orders = orders
        self.rows = rows
    }

    /// The table as aligned text lines, a header of byte orders and one row per type.
    public func lines() -> [String] {
        let header = ["type"] + orders.map(\.description)
        let body = rows.map { row in [row.type.rawValue] + row.values.map(Self.text) }
        let table = [header] + body
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        return table.map { cells in
            cells.enumerated().map { column, cell in
                column == 0
                    ? cell + String(repeating: " ", count: widths[column] - cell.count)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }

    static func text(_ value: PointValue) -> String {
        guard case .number(let n) = value else { return DiagnosticsFormat.value(value) }
        return DiagnosticsFormat.number(n)
    }
}
