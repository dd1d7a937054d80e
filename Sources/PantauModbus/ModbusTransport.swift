import PantauCore

/// What a bus poller needs from a Modbus master: the seam between the polling logic and libmodbus.
/// Not thread safe: the one thread that owns a bus owns its transport.
public protocol ModbusTransport: AnyObject {
    /// Opens the serial port or TCP connection.
    func connect() throws(ModbusError)
    /// Closes it; `connect()` may follow.
    func close()
    /// Addresses the next requests to this unit (slave) id.
    func setUnit(_ unit: Int) throws(ModbusError)
    /// How long to wait for the first byte of a reply.
    func setResponseTimeout(ms: Int)
    /// One read transaction. Register tables give the words; bit tables give 0 or 1 per bit.
    func read(_ request: ReadRequest) throws(ModbusError) -> [UInt16]
    /// Discards whatever is waiting in the receive buffer (a late reply).
    func flush()
    /// One write transaction: holding registers or coils (0/1 words); see `ModbusMaster.write(table:address:words:)`.
    func write(table: RegisterTable, address: Int, words: [UInt16]) throws(ModbusError)
}

extension ModbusTransport {
    /// Links that carry no Modbus writes (UART sensors, SDI-12) refuse them.
    public func write(table: RegisterTable, address: Int, words: [UInt16]) throws(ModbusError) {
        throw ModbusError(
            code: .illegalFunction, message: "this link cannot write registers", table: table, address: address,
            count: words.count)
    }
}
