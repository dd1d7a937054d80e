import PantauYAML

/// The parts of one `devices` entry, one concern each; `parseDevices` reads them in order and puts them together.
extension Parsing {
    /// `bus`: the name of a bus defined under `buses`.
    func deviceBus(_ d: MappingReader, buses: [ParsedBus], what: String) -> BusConfig? {
        guard let node = d.value("bus", required: true), let busName = reader.string(node, what: "'bus' of \(what)")
        else { return nil }
        if let bus = buses.first(where: { $0.config.name == busName })?.config { return bus }
        let defined = buses.map(\.config.name).joined(separator: ", ")
        reader.error(node, "\(what) is on bus '\(busName)', which is not defined under 'buses' (defined: \(defined))")
        return nil
    }

    /// `unit`: 1-247, or 255 on a Modbus TCP bus.
    func deviceUnit(_ d: MappingReader, bus: BusConfig?, what: String) -> Int? {
        guard let node = d.value("unit", required: true) else { return nil }
        // With an unknown bus (already reported) accept either range, so one mistake gives one error.
        var isTCP = bus == nil
        if case .tcp = bus?.transport { isTCP = true }
        guard let u = reader.int(node, what: "'unit' of \(what)") else { return nil }
        if (1...247).contains(u) || (isTCP && u == 255) { return u }
        reader.error(node, "unit id \(u) of \(what) is outside 1-247" + (isTCP ? " (or 255 for Modbus TCP)" : ""))
        return nil
    }

    /// `profile`: an id in the profile library; an unknown one gets the nearest id as a hint and the folders searched.
    func deviceProfile(_ d: MappingReader, library: ProfileLibrary, what: String) -> DeviceProfile? {
        guard let node = d.value("profile", required: true), let id = reader.string(node, what: "'profile' of \(what)")
        else { return nil }
        if let p = library[id] { return p }
        if let problem = library.problems[id] {
            reader.error(node, "profile '\(id)' of \(what) has errors:\n" + problem.description)
        } else {
            let known = library.profiles.keys.sorted()
            let nearest = known.min { editDistance($0, id) < editDistance($1, id) }
            let hint = nearest.map { " (did you mean '\($0)'?)" } ?? ""
            let searched = ProfileLibrary.describeSearch(library.directories)
            reader.error(node, "unknown profile '\(id)' for \(what)\(hint); \(searched)")
        }
        return nil
    }

    /// The profile's timing with the device's `timeout_ms`, `retries` and `timing` section over it.
    func deviceTiming(_ d: MappingReader, profile: DeviceProfile?) -> ProfileTiming {
        var timing = profile?.timing ?? ProfileTiming()
        if let t = d.int("timeout_ms", range: 10...60_000) { timing.responseTimeoutMs = t }
        if let r = d.int("retries", range: 0...10) { timing.retries = r }
        if let t = d.mapping("timing") { timing = ProfileParser.parseTiming(t, base: timing) }
        return timing
    }

    /// `location`: `lat`, `lon` and a `description`.
    func parseLocation(_ l: MappingReader) -> DeviceLocation {
        let location = DeviceLocation(
            latitude: l.double("lat", range: -90...90), longitude: l.double("lon", range: -180...180),
            description: l.string("description"))
        l.finish()
        return location
    }

    /// `install`: named numbers of the installation (a sensor's height, a tank's area) for the profile's formulas.
    func parseInstall(_ i: MappingReader, what: String) -> [String: Double] {
        guard case .mapping(let pairs) = i.node.content else { return [:] }
        var install: [String: Double] = [:]
        for pair in pairs {
            guard let key = pair.key.scalar else { continue }
            _ = i.value(key)
            if let v = reader.double(pair.value, what: "install parameter '\(key)' of \(what)") { install[key] = v }
        }
        i.finish()
        return install
    }

    /// `report`: a strategy per point of the profile.
    func parseReports(_ r: MappingReader, profile: DeviceProfile?) -> [String: ReportStrategy] {
        guard case .mapping(let pairs) = r.node.content else { return [:] }
        var report: [String: ReportStrategy] = [:]
        for pair in pairs {
            guard let point = pair.key.scalar else { continue }
            _ = r.value(point)
            if let profile, profile.point(named: point) == nil {
                reader.error(
                    pair.key, "report strategy for '\(point)', which is not a point of profile '\(profile.id)'")
            }
            if let m = reader.mapping(pair.value, what: "report strategy of '\(point)'") {
                report[point] = parseReport(m)
            }
        }
        r.finish()
        return report
    }

    /// One entry of `float_switches`: a point, how many samples in a row and how long a change must hold.
    func parseFloatSwitch(_ node: YAMLNode, profile: DeviceProfile?, what: String) -> FloatSwitchConfig? {
        guard let m = reader.mapping(node, what: "a float switch of \(what)") else { return nil }
        let point = pointName(m, profile: profile)
        let samples = m.int("samples", range: 1...100) ?? 3
        let dwell = m.interval("dwell") ?? .seconds(0)
        m.finish()
        return point.map { FloatSwitchConfig(point: $0, samples: samples, dwell: dwell) }
    }

    /// `rain`: a tip or rain counter, millimetres per count and where the counter wraps.
    func parseRain(_ r: MappingReader, profile: DeviceProfile?, what: String) -> RainConfig? {
        let point = pointName(r, profile: profile)
        var mm = r.double("mm_per_count") ?? 1
        if mm <= 0, let n = r.value("mm_per_count") {
            reader.error(n, "'mm_per_count' of \(what) must be more than 0, found \(mm)")
            mm = 1
        }
        // The counter's value where it wraps to 0, in the point's unit after scale (6553.6 for a
        // 16-bit counter of 0.1 mm steps).
        var modulus = r.double("counter_modulus") ?? 65536
        if !(modulus > 0 && modulus <= 18_446_744_073_709_551_616), let n = r.value("counter_modulus") {
            reader.error(
                n,
                "'counter_modulus' of \(what) must be more than 0 (where the counter wraps, e.g. 65536), "
                    + "found \(modulus)")
            modulus = 65536
        }
        if let profile, let point, let p = profile.point(named: point),
            !Self.rainQuantities.contains(p.quantity), let n = r.value("point")
        {
            let expected = Self.rainQuantities.sorted().joined(separator: ", ")
            reader.error(
                n,
                "rain needs a counter of tips or of rain, but '\(point)' of profile '\(profile.id)' is "
                    + "\(p.quantity) (expected \(expected))")
        }
        r.finish()
        return point.map { RainConfig(point: $0, mmPerCount: mm, counterModulus: modulus) }
    }

    /// `air_quality`: which indices (ISPU by default) and averaging periods per pollutant.
    func parseAirQuality(_ a: MappingReader, profile: DeviceProfile?) -> AirQualityConfig {
        var indices: [AirQualityConfig.Index] = []
        for n in a.list("indices") ?? [] {
            switch n.scalar {
            case "ispu": indices.append(.ispu)
            case "aqi": indices.append(.aqi)
            default: reader.error(n, "an air-quality index must be ispu or aqi, found \(reader.describe(n))")
            }
        }
        var averaging: [String: Interval] = [:]
        if let av = a.mapping("averaging"), case .mapping(let pairs) = av.node.content {
            for pair in pairs {
                guard let q = pair.key.scalar else { continue }
                _ = av.value(q)
                if let i = reader.interval(pair.value, what: "averaging period of '\(q)'", minimum: .minutes(1)) {
                    averaging[q] = i
                }
            }
            av.finish()
        }
        if let profile, !profile.points.contains(where: { Pollutant(rawValue: $0.quantity) != nil }) {
            let pollutants = Pollutant.allCases.map(\.rawValue).joined(separator: ", ")
            reader.error(
                a.node,
                "air_quality needs pollutant points, but profile '\(profile.id)' has none "
                    + "(pollutants: \(pollutants))")
        }
        a.finish()
        return AirQualityConfig(indices: indices.isEmpty ? [.ispu] : indices, averaging: averaging)
    }
}
