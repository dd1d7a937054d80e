import PantauCore

/// A transport that also writes: what the diagnostic commands (`raw`, `read`, `scan`) need from a link.
public protocol ModbusMaster: ModbusTransport {
    /// Writes one holding register (FC6).
    func writeRegister(address: Int, value: UInt16) throws(ModbusError)
    /// Writes consecutive holding registers (FC16), at most 123.
    func writeRegisters(address: Int, values: [UInt16]) throws(ModbusError)
    /// Writes one coil (FC5).
    func writeCoil(address: Int, on: Bool) throws(ModbusError)
    /// Writes consecutive coils (FC15), at most 1968.
    func writeCoils(address: Int, values: [Bool]) throws(ModbusError)
}

extension ModbusConnection: ModbusMaster {}

/// A link that only reads (framed UART sensors, SDI-12): every write is refused as an illegal function.
public protocol ReadOnlyMaster: ModbusMaster {
    var bus: String { get }
    /// Why, for the technician: e.g. "SDI-12 sensors take no Modbus writes".
    static var writeRefusal: String { get }
}

extension ReadOnlyMaster {
    public func writeRegister(address: Int, value: UInt16) throws(ModbusError) { throw noWrites() }
    public func writeRegisters(address: Int, values: [UInt16]) throws(ModbusError) { throw noWrites() }
    public func writeCoil(address: Int, on: Bool) throws(ModbusError) { throw noWrites() }
    public func writeCoils(address: Int, values: [Bool]) throws(ModbusError) { throw noWrites() }

    private func noWrites() -> ModbusError {
        ModbusError(code: .illegalFunction, message: Self.writeRefusal, bus: bus)
    }
}
