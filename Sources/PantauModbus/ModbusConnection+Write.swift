import PantauCore

extension ModbusConnection {
    /// Holding registers with FC6 (one) or FC16 (several); a coil with FC5.
    public func write(table: RegisterTable, address: Int, words: [UInt16]) throws(ModbusError) {
        switch table {
        case .holding where words.count == 1: try writeRegister(address: address, value: words[0])
        case .holding: try writeRegisters(address: address, values: words)
        case .coil where words.count == 1: try writeCoil(address: address, on: words[0] != 0)
        default:
            throw ModbusError(
                code: .invalidArgument, message: "cannot write \(words.count) word(s) to the \(table.rawValue) table",
                table: table, address: address, count: words.count)
        }
    }
}
