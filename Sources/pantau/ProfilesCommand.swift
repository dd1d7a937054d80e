import ArgumentParser
import PantauCore
import PantauGateway
import PantauPlatform

struct ProfileDirectoryOptions: ParsableArguments {
    @Option(
        name: [.customLong("profile-dir"), .customLong("dir")],
        help: "An extra profile folder, searched first (repeatable).")
    var directories: [String] = []

    func library() -> ProfileLibrary {
        ProfileLibrary(directories: directories + ConfigLoading.defaultProfileDirectories())
    }

    func profile(_ id: String) throws -> DeviceProfile {
        let lib = library()
        if let p = lib[id] { return p }
        if let problem = lib.problems[id] {
            printError(problem.description)
            throw fail("profile '\(id)' has errors", code: .config)
        }
        let searched = ProfileLibrary.describeSearch(lib.directories)
        throw fail(
            "unknown profile '\(id)'", hint: "\(searched); `pantau profiles list` shows the profiles found",
            code: .config)
    }
}

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles", abstract: "List, show, validate, test and plan device profiles.",
        subcommands: [List.self, Show.self, Validate.self, Test.self, Plan.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the profiles found.")
        @OptionGroup var dirs: ProfileDirectoryOptions
        @Flag(help: "Print JSON.") var json = false

        struct Entry: Encodable {
            var id: String, manufacturer: String, model: String, firmware: String, points: Int, file: String
        }

        func run() throws {
            let lib = dirs.library()
            let entries = lib.profiles.values.sorted { $0.id < $1.id }.map {
                Entry(
                    id: $0.id, manufacturer: $0.manufacturer, model: $0.model, firmware: $0.firmware,
                    points: $0.points.count, file: $0.file)
            }
            if json {
                printJSON(entries)
                return
            }
            let w = max(4, entries.map(\.id.count).max() ?? 0)
            print("ID".padding(w) + "  POINTS  MODEL")
            for e in entries {
                print(
                    e.id.padding(w) + "  " + String(e.points).padding(6)
                        + "  \(e.manufacturer) \(e.model) (firmware \(e.firmware))")
            }
            for (id, problem) in lib.problems.sorted(by: { $0.key < $1.key }) {
                printError("\(id): BROKEN\n\(problem)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a profile's points and encodings.")
        @OptionGroup var dirs: ProfileDirectoryOptions
        @Argument(help: "Profile id.") var id: String

        func run() throws {
            let p = try dirs.profile(id)
            print("\(p.id) v\(p.version): \(p.manufacturer) \(p.model), firmware \(p.firmware)")
            print("source: \(p.source)")
            print(
                "serial: \(p.serial.baud) baud, parity \(p.serial.parity.rawValue), \(p.serial.dataBits) data, \(p.serial.stopBits) stop"
                    + (p.defaultUnitId.map { "; factory unit id \($0)" } ?? ""))
            print(
                "timing: timeout \(p.timing.responseTimeoutMs) ms, retries \(p.timing.retries), max \(p.timing.maxRegistersPerRead) registers per read, max gap \(p.timing.maxGap)"
                    + (p.timing.singlePointReads ? ", one request per point" : ""))
            print("points (addresses are 0-based protocol addresses):")
            for pt in p.points {
                var enc = "\(pt.type.rawValue)"
                if pt.type != .bit && !pt.table.isBitTable { enc += " \(pt.order)" }
                if pt.encoding == .signMagnitude { enc += " sign-magnitude" }
                if let b = pt.bit { enc += " bit \(b)" }
                var math = ""
                if pt.scale != 1 { math += " x\(pt.scale)" }
                if pt.offset != 0 { math += " \(pt.offset > 0 ? "+" : "")\(pt.offset)" }
                if let d = pt.decimalsFrom { math += " x10^-\(d)" }
                let range = pt.validRange.map { " range \($0.lowerBound)...\($0.upperBound)" } ?? ""
                print(
                    "  \(pt.name.padding(22)) \(pt.table.rawValue.padding(8)) \(String(pt.address).padding(5)) \(enc.padding(16)) \(pt.unit.padding(6))\(math)\(range)\(pt.publish ? "" : " (not published)")"
                )
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate profile files (default: every profile found).")
        @OptionGroup var dirs: ProfileDirectoryOptions
        @Argument(help: "Profile files or folders.") var paths: [String] = []

        func run() throws {
            var files: [String] = []
            let targets = paths.isEmpty ? dirs.library().directories : paths
            if targets.isEmpty {
                throw fail("nothing to validate", hint: ProfileLibrary.describeSearch([]), code: .config)
            }
            for path in targets {
                if FileSystem.isDirectory(path) {
                    files += FileSystem.list(path).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.map {
                        "\(path)/\($0)"
                    }
                } else {
                    files.append(path)
                }
            }
            var bad = 0
            for file in files {
                let result = ProfileParser.load(path: file)
                switch result {
                case .success(let p):
                    print(
                        "\(file): OK (\(p.id), \(DiagnosticsFormat.counted(p.points.count, "point")), "
                            + "\(DiagnosticsFormat.counted(p.testVectors.count, "vector")))"
                    )
                case .failure(let e):
                    print(e.description)
                    bad += 1
                }
            }
            if bad > 0 {
                throw fail("\(bad) of \(DiagnosticsFormat.counted(files.count, "profile")) invalid", code: .config)
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the embedded test vectors (default: every profile).")
        @OptionGroup var dirs: ProfileDirectoryOptions
        @Argument(help: "Profile ids.") var ids: [String] = []

        func run() throws {
            let lib = dirs.library()
            let profiles = ids.isEmpty ? lib.profiles.values.sorted { $0.id < $1.id } : try ids.map(dirs.profile)
            var failed = 0
            for p in profiles {
                let outcome = ProfileVectors.run(p)
                if outcome.passed {
                    print("\(p.id): PASS (\(outcome.vectors) vectors, \(outcome.checks) values)")
                } else {
                    failed += 1
                    print("\(p.id): FAIL")
                    for m in outcome.mismatches { print("  \(m)") }
                }
                if outcome.vectors == 0 { print("  warning: \(p.id) has no test vectors") }
            }
            if failed > 0 {
                throw fail("\(DiagnosticsFormat.counted(failed, "profile")) failed their vectors", code: .dataError)
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the read requests the poller makes for a profile.")
        @OptionGroup var dirs: ProfileDirectoryOptions
        @Argument(help: "Profile id.") var id: String

        func run() throws {
            let p = try dirs.profile(id)
            if let lines = linkPlanLines(p) {
                for line in lines { print(line) }
                return
            }
            let plan = ReadPlanner.plan(points: p.points, timing: p.timing)
            print(planHeader(p, plan))
            for r in plan {
                let covered = p.points.filter {
                    $0.table == r.table && $0.address >= r.address && $0.address + $0.span <= r.address + r.count
                }
                print(requestLine(r) + covered.map(\.name).joined(separator: ", "))
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadded(_ width: Int, with c: Character = "0") -> String {
        count >= width ? self : String(repeating: c, count: width - count) + self
    }
}
