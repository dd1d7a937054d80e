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
