import PantauCore

extension ModbusMaster {
    /// Holding registers with FC6 (one) or FC16 (several); coils with FC5 (one) or FC15 (several), from 0/1 words.
    /// Every master writes this way (libmodbus, RTU over TCP, `pantau raw write`); links without Modbus writes
    /// refuse in their own write functions.
    public func write(table: RegisterTable, address: Int, words: [UInt16]) throws(ModbusError) {
        switch table {
        case .holding where words.count == 1: try writeRegister(address: address, value: words[0])
        case .holding: try writeRegisters(address: address, values: words)
        case .coil where words.count == 1: try writeCoil(address: address, on: words[0] != 0)
        case .coil: try writeCoils(address: address, values: words.map { $0 != 0 })
        default:
            throw ModbusError(
                code: .invalidArgument, message: "cannot write \(words.count) word(s) to the \(table.rawValue) table",
                table: table, address: address, count: words.count)
        }
    }
}
