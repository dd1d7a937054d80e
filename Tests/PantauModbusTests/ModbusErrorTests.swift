import PantauCore
import Testing

@testable import PantauModbus

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ModbusErrorTests {
    @Test(arguments: [
        (ModbusError.exceptionIllegalFunction, ModbusError.Code.illegalFunction, ModbusError.Class.config),
        (ModbusError.exceptionIllegalAddress, .illegalAddress, .config),
        (ModbusError.exceptionIllegalValue, .illegalValue, .config),
        (ModbusError.exceptionServerFailure, .deviceFailure, .busy),
        (ModbusError.exceptionAcknowledge, .busy, .busy),
        (ModbusError.exceptionServerBusy, .busy, .busy),
        (ModbusError.exceptionGatewayPath, .gatewayPath, .link),
        (ModbusError.exceptionGatewayTarget, .gatewayPath, .link),
        (ModbusError.badCRC, .badCRC, .link),
        (ModbusError.badData, .badData, .link),
        (ModbusError.badSlave, .badData, .link),
        (ModbusError.unknownException, .badData, .link),
        (ModbusError.tooManyData, .invalidArgument, .config),
        (ETIMEDOUT, .timeout, .link),
        (ECONNRESET, .connection, .connection),
        (EPIPE, .connection, .connection),
        (EBADF, .connection, .connection),
        (ECONNREFUSED, .connection, .connection),
        (ENOENT, .connection, .connection),
        (EINVAL, .invalidArgument, .config),
        (Int32(4242), .other, .link),
    ])
    func errnoMapsToCodeAndClass(errno: Int32, code: ModbusError.Code, errorClass: ModbusError.Class) {
        let error = ModbusError(errno: errno, bus: "rs485-1", unit: 3, table: .input, address: 7, count: 2)
        #expect(error.code == code)
        #expect(error.class == errorClass)
        #expect(error.errno == errno)
        #expect(error.description == "bus rs485-1 unit 3 input 7+2: \(error.message)")
        #expect(!error.message.isEmpty)
    }

    @Test func libmodbusErrorNumbersMatchTheHeader() {
        // modbus.h: MODBUS_ENOBASE 112345678, EMBXILFUN = base + 1 ... EMBBADSLAVE = EMBXGTAR + 6.
        #expect(ModbusError.exceptionIllegalFunction == 112_345_679)
        #expect(ModbusError.exceptionGatewayTarget == 112_345_689)
        #expect(ModbusError.badSlave == 112_345_695)
    }
}
