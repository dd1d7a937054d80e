import ArgumentParser
import PantauCore
import PantauGateway
import PantauModbus

extension ScanCommand {
    struct SDI12Report: Encodable {
        var link: String
        var query: String?
        var found: [Sensor]
        struct Sensor: Encodable {
            var address: String
            var unit: Int
            var identification: String?
        }
    }

    /// `scan --sdi12 TTY`: `?!` first (one sensor answers with its address), then `a!` at every SDI-12 address
    /// (0-9, A-Z, a-z), and `aI!` for each that answers. A configuration names a sensor by its address's ASCII
    /// code, which is printed as the unit.
    func scanSDI12(_ device: String) throws {
        let settings = SDI12Settings(device: device)
        let link = ModbusLink.sdi12(settings)
        let transport = SDI12Transport(settings: settings, bus: link.description)
        transport.setResponseTimeout(ms: timeoutMs)
        do {
            try transport.connect()
        } catch {
            throw modbusFailure(error)
        }
        defer { transport.close() }
        Interruption.install()
        var found: [SDI12Report.Sensor] = []
        var query: String?
        do {
            query = try transport.queryAddress().map { String(UnicodeScalar($0)) }
            if let query { printError("?! answered address \(query)") }
            let addresses = Array(48...57) + Array(65...90) + Array(97...122)
            for unit in addresses where !Interruption.requested {
                guard try transport.acknowledges(unit: unit) else { continue }
                let ident = try transport.identification(unit: unit)
                let address = String(UnicodeScalar(UInt8(unit)))
                printError("found SDI-12 address \(address) (unit \(unit))" + (ident.map { ": \($0)" } ?? ""))
                found.append(.init(address: address, unit: unit, identification: ident))
            }
        } catch {
            throw modbusFailure(error)
        }
        if json {
            printJSON(SDI12Report(link: link.description, query: query, found: found))
        } else {
            print("ADDRESS  UNIT  IDENTIFICATION")
            for s in found {
                print(s.address.padding(7) + "  " + String(s.unit).padding(4) + "  " + (s.identification ?? "?"))
            }
            print("\(DiagnosticsFormat.counted(found.count, "sensor")) found")
        }
        if Interruption.requested { throw ArgumentParser.ExitCode(130) }
        if found.isEmpty {
            throw fail(
                "no SDI-12 sensor answered on \(link.description)",
                hint: "check the adapter, the sensor's power and its data wire; try a longer --timeout-ms",
                code: .unavailable)
        }
    }
}
