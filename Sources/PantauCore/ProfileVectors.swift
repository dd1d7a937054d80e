/// Runs a profile's embedded test vectors through the decoder: the check behind `pantau profiles test`.
public enum ProfileVectors {
    public struct Mismatch: Sendable, Hashable, CustomStringConvertible {
        public var vector: String
        public var point: String
        public var expected: PointValue
        public var actual: PointValue?
        public var quality: Quality?

        public var description: String {
            let got = actual.map { "\($0)" } ?? "no value"
            return "\(vector): \(point) expected \(expected), decoded \(got) (\(quality?.rawValue ?? "missing"))"
        }
    }

    public struct Outcome: Sendable {
        public var vectors: Int
        public var checks: Int
        public var mismatches: [Mismatch]
        public var passed: Bool { mismatches.isEmpty }
    }

    public static func run(_ profile: DeviceProfile) -> Outcome {
        var checks = 0
        var mismatches: [Mismatch] = []
        for vector in profile.testVectors {
            let readings = RegisterDecoder.decode(
                profile: profile, image: RegisterImage(vector.registers), device: "vector", acquiredAt: 0)
            for (name, expected) in vector.expect.sorted(by: { $0.key < $1.key }) {
                checks += 1
                let reading = readings.first { $0.point == name }
                guard let point = profile.point(named: name), let reading, let actual = reading.value,
                    matches(expected, actual, point: point)
                else {
                    mismatches.append(
                        Mismatch(
                            vector: vector.description, point: name, expected: expected, actual: reading?.value,
                            quality: reading?.quality))
                    continue
                }
            }
        }
        return Outcome(vectors: profile.testVectors.count, checks: checks, mismatches: mismatches)
    }

    /// Numbers match within half a step of the point's scale (or a relative 1e-6 for floats).
    static func matches(_ expected: PointValue, _ actual: PointValue, point: PointSpec) -> Bool {
        switch (expected, actual) {
        case (.number(let e), .number(let a)):
            let floatType = point.type == .f32 || point.type == .f64
            let tolerance = max(floatType ? abs(e) * 1e-6 : abs(point.scale) / 2 * 0.999, 1e-9)
            return abs(e - a) <= tolerance
        default:
            return expected == actual
        }
    }
}
