import ArgumentParser
import PantauCore
import PantauGateway
import PantauModbus
import PantauPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// Opens the link or stops with exit 69 and a hint naming it.
func openOrExit(_ link: ModbusLink, timeoutMs: Int) throws -> any ModbusMaster {
    do {
        return try link.open(responseTimeoutMs: timeoutMs)
    } catch {
        throw modbusFailure(error)
    }
}

/// Stops the command on a Modbus error: one line, a hint with bus, unit and register, and a sysexits code.
func modbusFailure(_ error: ModbusError) -> ArgumentParser.ExitCode {
    let code: PantauGateway.ExitCode
    switch error.class {
    case .config: code = error.code == .invalidArgument ? .usage : .dataError
    case .busy, .link, .connection: code = .unavailable
    }
    return fail(error.message, hint: error.technicianHint, code: code)
}

/// Stops the command on a value it cannot use, with exit 64.
func usageFailure(_ error: DiagnosticsUsageError) -> ArgumentParser.ExitCode {
    fail(error.message, hint: error.hint, code: .usage)
}

extension RegisterTable: ExpressibleByArgument {}

struct RawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw",
        abstract: "Read or write registers and coils directly, like mbpoll (addresses are 0-based).",
        discussion: """
            Addresses are 0-based protocol addresses as on the wire: holding register 40001 in PLC notation is \
            address 0. With --one-based the address you type is 1-based, like mbpoll's default.
            """,
        subcommands: [Read.self, Write.self])

    struct Target: ParsableArguments {
        @OptionGroup var link: LinkOptions

        @Option(help: "Unit (slave) id.")
        var unit: Int

        @Option(help: "Register table: holding, input, coil or discrete.")
        var table: RegisterTable = .holding

        @Option(help: "First address (0-based protocol address unless --one-based).")
        var address: Int

        @Flag(help: "Take --address as 1-based (like mbpoll without -0).")
        var oneBased = false

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            if !(0...255).contains(unit) { throw ValidationError("--unit must be within 0...255") }
            try link.requireGiven()
        }

        func protocolAddress() throws -> Int {
            do {
                return try RawArguments.protocolAddress(address, oneBased: oneBased)
            } catch {
                throw usageFailure(error)
            }
        }

        /// Where a report says the registers are: link, unit, table and the address in both notations.
        func place(_ resolved: ModbusLink, address: Int) -> RawPlace {
            RawPlace(
                link: resolved.description, unit: unit, table: table.rawValue, address: address,
                plc: PLCAddress.text(table: table, address: address))
        }

        /// Opens `resolved` (the link these options give, resolved once) and addresses the unit.
        func open(_ resolved: ModbusLink) throws -> any ModbusMaster {
            let connection = try openOrExit(resolved, timeoutMs: link.timeoutMs ?? 500)
            do {
                try connection.setUnit(unit)
            } catch {
                throw modbusFailure(error)
            }
            return connection
        }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read registers, coils or discrete inputs once.")

        @OptionGroup var target: Target

        @Option(help: "How many registers or bits.")
        var count: Int = 1

        @Flag(help: "Show 1, 2 or 4 registers as every numeric type in every byte order.")
        var interpret = false

        struct Report: Encodable {
            var convention: String
            var responseMs: Double
            var values: [Item]
            var interpretations: [Interpretation]?
            struct Item: Encodable {
                var address: Int
                var value: Int
                var hex: String?
            }
            struct Interpretation: Encodable {
                var type: String
                var order: String
                var value: SenMLNumber?
                var text: String
            }
        }

        func validate() throws {
            let limit = target.table.isBitTable ? ReadPlanner.protocolMaxBits : ReadPlanner.protocolMaxRegisters
            if !(1...limit).contains(count) { throw ValidationError("--count must be within 1...\(limit)") }
            if interpret && (target.table.isBitTable || ![1, 2, 4].contains(count)) {
                throw ValidationError("--interpret needs --count 1, 2 or 4 of a holding or input table")
            }
        }

        func run() throws {
            let address = try target.protocolAddress()
            let link = try target.link.link()
            let connection = try target.open(link)
            defer { connection.close() }
            let clock = SystemClock()
            let start = clock.monotonicNanos()
            let words: [UInt16]
            do {
                words = try connection.read(ReadRequest(table: target.table, address: address, count: count))
            } catch {
                throw modbusFailure(error)
            }
            let ms = Double(clock.monotonicNanos() - start) / 1_000_000
            let table = target.table
            let interpretation = interpret ? InterpretationTable(words: words) : nil
            if target.json {
                let interpretations = interpretation.map { t in
                    t.rows.flatMap { row in
                        zip(t.orders, row.values).map { order, value in
                            Report.Interpretation(
                                type: row.type.rawValue, order: order.description,
                                value: SenMLNumber(value),
                                text: DiagnosticsFormat.value(value))
                        }
                    }
                }
                printJSON(
                    Placed(
                        place: target.place(link, address: address),
                        report: Report(
                            convention: PLCAddress.convention(table: table, address: address), responseMs: ms,
                            values: words.enumerated().map { i, w in
                                .init(
                                    address: address + i, value: Int(w),
                                    hex: table.isBitTable ? nil : DiagnosticsFormat.hex(w))
                            },
                            interpretations: interpretations)))
                return
            }
            print(
                "\(link), unit \(target.unit), \(table.rawValue), \(count) from address \(address) "
                    + "(\(DiagnosticsFormat.milliseconds(ms)))")
            print(PLCAddress.convention(table: table, address: address))
            for (i, word) in words.enumerated() {
                let a = address + i
                let plc = PLCAddress.text(table: table, address: a)
                if table.isBitTable {
                    print("[\(a)] \(plc): \(word)")
                } else {
                    let signed = Int16(bitPattern: word)
                    let extra = signed < 0 ? " (\(signed))" : ""
                    print("[\(a)] \(plc): \(word)\(extra)  \(DiagnosticsFormat.hex(word))")
                }
            }
            if let interpretation {
                print("as numbers (unscaled, two's complement), byte orders: A = most significant byte:")
                for line in interpretation.lines() { print("  " + line) }
            }
        }
    }

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one or more holding registers or coils (asks first unless --yes).",
            discussion: """
                One value writes a single register (FC6) or coil (FC5); several write consecutive ones (FC16, FC15). \
                On a terminal it asks for confirmation; without a terminal on standard input it refuses unless \
                --yes is given.
                """)

        @OptionGroup var target: Target

        @Flag(help: "Write without asking.")
        var yes = false

        // Negative register values look like options to the parser: take whatever it does not recognise.
        @Argument(
            parsing: .allUnrecognized,
            help: "Values: registers as 0...65535, -32768...-1 or 0x04D2; coils as 1/0, on/off, true/false.")
        var values: [String]

        struct Report: Encodable {
            var values: [Int]
            var responseMs: Double
        }

        func validate() throws {
            if target.table == .input || target.table == .discrete {
                throw ValidationError("only holding registers and coils can be written (--table holding|coil)")
            }
            if values.isEmpty { throw ValidationError("give at least one value to write") }
        }

        func run() throws {
            let address = try target.protocolAddress()
            let table = target.table
            let words: [UInt16]
            do {
                words =
                    table == .coil
                    ? try RawArguments.coils(values).map { $0 ? 1 : 0 }
                    : try RawArguments.registers(values)
            } catch {
                throw usageFailure(error)
            }
            let resolved = try target.link.link()
            let what =
                DiagnosticsFormat.counted(words.count, table == .coil ? "coil" : "holding register") + " "
                + "at address \(address) (PLC \(PLCAddress.text(table: table, address: address))) "
                + "on unit \(target.unit) via \(resolved)"
            if !yes {
                guard isatty(STDIN_FILENO) == 1 else {
                    throw fail(
                        "refusing to write \(what) without confirmation",
                        hint: "standard input is not a terminal; add --yes to write anyway", code: .usage)
                }
                writeStandardError("write \(words.map(String.init).joined(separator: " ")) to \(what)? [y/N] ")
                let answer = readLine()?.trimmedWhitespace().lowercased() ?? ""
                guard answer == "y" || answer == "yes" else {
                    throw fail("nothing written", code: .failure)
                }
            }
            let connection = try target.open(resolved)
            defer { connection.close() }
            let clock = SystemClock()
            let start = clock.monotonicNanos()
            do {
                try connection.write(table: table, address: address, words: words)
            } catch {
                throw modbusFailure(error)
            }
            let ms = Double(clock.monotonicNanos() - start) / 1_000_000
            if target.json {
                printJSON(
                    Placed(
                        place: target.place(resolved, address: address),
                        report: Report(values: words.map(Int.init), responseMs: ms)))
            } else {
                print("wrote \(what) (\(DiagnosticsFormat.milliseconds(ms)))")
            }
        }
    }
}

/// Where the registers of a `raw` report are: the fields `raw read` and `raw write` both start with.
struct RawPlace: Encodable {
    var link: String
    var unit: Int
    var table: String
    var address: Int
    var plc: String
}

/// A `raw` report with its place, written as one JSON object.
struct Placed<Report: Encodable>: Encodable {
    var place: RawPlace
    var report: Report

    func encode(to encoder: any Encoder) throws {
        try place.encode(to: encoder)
        try report.encode(to: encoder)
    }
}
