import PantauYAML

extension ProfileParser {
    /// A point's `writable: true`: only holding registers and coils, numbers with a declared `range` (the limits a
    /// remote write must stay within) or bits, never strings, bits inside a register or `decimals_from` points.
    static func parseWritable(
        _ m: MappingReader, table: RegisterTable?, type: ValueType?, range: ClosedRange<Double>?, decimalsFrom: String?
    ) -> Bool {
        guard m.bool("writable") == true, let node = m.value("writable") else { return false }
        let what = m.what
        if let table, table != .holding && table != .coil {
            m.reader.error(node, "\(what) is in the \(table.rawValue) table, which Modbus cannot write")
            return false
        }
        if type == .string || (type == .bit && table == .holding) {
            m.reader.error(
                node, "\(what) cannot be writable: only numbers and coils are (not strings or bits in a register)")
            return false
        }
        if decimalsFrom != nil {
            m.reader.error(node, "\(what) takes its decimals from another point and cannot be writable")
            return false
        }
        if table == .holding && range == nil {
            m.reader.error(node, "\(what) is writable and needs 'range: [minimum, maximum]' to bound remote writes")
            return false
        }
        return true
    }
}
