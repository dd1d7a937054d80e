import PantauCore
import Testing

/// A point reduced to what the planner sees: table, first address and size.
private func span(_ table: RegisterTable, _ address: Int, _ count: Int = 1, bit: Int? = nil) -> PointSpec {
    let type: ValueType
    switch count {
    case 1: type = table.isBitTable || bit != nil ? .bit : .u16
    case 2: type = .f32
    case 4: type = .f64
    default: type = .string
    }
    return PointSpec(
        name: "\(table.rawValue)_\(address)_\(count)_\(bit ?? -1)", quantity: "counter", table: table,
        address: address, type: type, length: count, bit: bit
    )
}

private func holding(_ address: Int, _ count: Int = 1) -> PointSpec { span(.holding, address, count) }

/// The fewest requests, by exhaustive search over every request that starts at a point's first register and ends
/// at a point's last: an oracle independent of the planner's sweep, for small layouts.
private func bruteForceMinimum(_ points: [PointSpec], maxCount: Int, maxGap: Int) -> Int {
    let intervals = points.map { (start: $0.address, end: $0.address + $0.span) }
    var candidates: Set<Int> = []
    for a in Set(intervals.map(\.start)) {
        for b in Set(intervals.map(\.end)) where b > a {
            let inside = intervals.indices.filter { intervals[$0].start >= a && intervals[$0].end <= b }
            guard !inside.isEmpty else { continue }
            // A point larger than the cap (profile validation rejects it) may still be read on its own.
            let oversizedPoint = intervals.contains { $0.start == a && $0.end == b }
            guard b - a <= maxCount || oversizedPoint else { continue }
            var reach = a
            var valid = true
            for i in inside.sorted(by: { intervals[$0].start < intervals[$1].start }) {
                if intervals[i].start - reach > maxGap { valid = false }
                reach = max(reach, intervals[i].end)
            }
            guard valid, reach == b else { continue }
            candidates.insert(inside.reduce(0) { $0 | 1 << $1 })
        }
    }
    let all = (1 << points.count) - 1
    var best = [Int](repeating: Int.max, count: all + 1)
    best[0] = 0
    for mask in 0...all where best[mask] != Int.max {
        for cover in candidates {
            best[mask | cover] = min(best[mask | cover], best[mask] + 1)
        }
    }
    return best[all]
}

struct PlannerCase: CustomTestStringConvertible, Sendable {
    var name: String
    var points: [PointSpec]
    var timing: ProfileTiming
    var expectedCount: Int
    /// The exact plan, where the layout pins it down.
    var expected: [ReadRequest]? = nil

    var testDescription: String { name }
}

private let plannerCases: [PlannerCase] = [
    PlannerCase(name: "empty", points: [], timing: ProfileTiming(), expectedCount: 0, expected: []),
    PlannerCase(
        name: "hole of exactly maxGap is bridged", points: [holding(0), holding(9)], timing: ProfileTiming(maxGap: 8),
        expectedCount: 1, expected: [ReadRequest(table: .holding, address: 0, count: 10)]
    ),
    PlannerCase(
        name: "hole one over maxGap splits", points: [holding(0), holding(10)], timing: ProfileTiming(maxGap: 8),
        expectedCount: 2,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 1), ReadRequest(table: .holding, address: 10, count: 1),
        ]
    ),
    PlannerCase(
        name: "maxGap 0 joins only adjacent points", points: [holding(0, 2), holding(2), holding(4)],
        timing: ProfileTiming(maxGap: 0), expectedCount: 2,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 3), ReadRequest(table: .holding, address: 4, count: 1),
        ]
    ),
    PlannerCase(
        name: "tables never mix, sorted by function code",
        points: [holding(1), span(.input, 0), holding(0), span(.discrete, 0), span(.coil, 0), span(.input, 1)],
        timing: ProfileTiming(), expectedCount: 4,
        expected: [
            ReadRequest(table: .coil, address: 0, count: 1), ReadRequest(table: .discrete, address: 0, count: 1),
            ReadRequest(table: .holding, address: 0, count: 2), ReadRequest(table: .input, address: 0, count: 2),
        ]
    ),
    PlannerCase(
        name: "200 contiguous registers split at 125", points: (0..<200).map { holding($0) },
        timing: ProfileTiming(), expectedCount: 2,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 125), ReadRequest(table: .holding, address: 125, count: 75),
        ]
    ),
    PlannerCase(
        name: "a configured max above 125 is held to the protocol", points: (0..<130).map { holding($0) },
        timing: ProfileTiming(maxRegistersPerRead: 200), expectedCount: 2
    ),
    PlannerCase(
        name: "device max of 16", points: (0..<20).map { holding($0 * 2, 2) },
        timing: ProfileTiming(maxRegistersPerRead: 16), expectedCount: 3,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 16), ReadRequest(table: .holding, address: 16, count: 16),
            ReadRequest(table: .holding, address: 32, count: 8),
        ]
    ),
    PlannerCase(
        name: "a 2-register value never straddles the cap", points: [holding(0, 15), holding(15, 2)],
        timing: ProfileTiming(maxRegistersPerRead: 16), expectedCount: 2
    ),
    PlannerCase(
        name: "single-point reads, identical spans read once",
        points: [holding(0), holding(1), holding(2, 2), span(.holding, 5, bit: 0), span(.holding, 5, bit: 1)],
        timing: ProfileTiming(singlePointReads: true), expectedCount: 4,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 1), ReadRequest(table: .holding, address: 1, count: 1),
            ReadRequest(table: .holding, address: 2, count: 2), ReadRequest(table: .holding, address: 5, count: 1),
        ]
    ),
    PlannerCase(
        name: "overlapping points share a read",
        points: [holding(10, 2), holding(11), span(.holding, 11, bit: 3), span(.holding, 10, bit: 15)],
        timing: ProfileTiming(maxGap: 0), expectedCount: 1,
        expected: [ReadRequest(table: .holding, address: 10, count: 2)]
    ),
    PlannerCase(
        name: "a point nested in a long one rides along", points: [holding(0, 10), holding(3), holding(20)],
        timing: ProfileTiming(maxRegistersPerRead: 12, maxGap: 0), expectedCount: 2
    ),
    PlannerCase(
        name: "overlap that would exceed the cap", points: [holding(0, 10), holding(5, 9), holding(6)],
        timing: ProfileTiming(maxRegistersPerRead: 12), expectedCount: 2
    ),
    PlannerCase(
        name: "string of 120 plus the 125th register", points: [holding(0, 120), holding(124)],
        timing: ProfileTiming(), expectedCount: 1, expected: [ReadRequest(table: .holding, address: 0, count: 125)]
    ),
    PlannerCase(
        name: "string of 120 plus the 126th register", points: [holding(0, 120), holding(125)],
        timing: ProfileTiming(), expectedCount: 2
    ),
    PlannerCase(
        name: "a point larger than the cap gets its own request", points: [holding(0, 20), holding(20)],
        timing: ProfileTiming(maxRegistersPerRead: 16), expectedCount: 2,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 20), ReadRequest(table: .holding, address: 20, count: 1),
        ]
    ),
    PlannerCase(
        name: "coils bridge maxGap × 16 bits", points: [span(.coil, 0), span(.coil, 129)],
        timing: ProfileTiming(maxGap: 8), expectedCount: 1,
        expected: [ReadRequest(table: .coil, address: 0, count: 130)]
    ),
    PlannerCase(
        name: "coils split beyond maxGap × 16 bits", points: [span(.coil, 0), span(.coil, 130)],
        timing: ProfileTiming(maxGap: 8), expectedCount: 2
    ),
    PlannerCase(
        name: "discrete inputs split at 2000 bits", points: (0..<2500).map { span(.discrete, $0) },
        timing: ProfileTiming(), expectedCount: 2,
        expected: [
            ReadRequest(table: .discrete, address: 0, count: 2000),
            ReadRequest(table: .discrete, address: 2000, count: 500),
        ]
    ),
    PlannerCase(
        name: "a device max of 16 registers caps bits at 256", points: (0..<300).map { span(.coil, $0) },
        timing: ProfileTiming(maxRegistersPerRead: 16), expectedCount: 2
    ),
    PlannerCase(
        name: "points given out of order", points: [holding(50), holding(3), holding(48), holding(0)],
        timing: ProfileTiming(maxGap: 4), expectedCount: 2,
        expected: [
            ReadRequest(table: .holding, address: 0, count: 4), ReadRequest(table: .holding, address: 48, count: 3),
        ]
    ),
]

/// Checks what holds for every plan: each point inside a request, the limits kept, the order deterministic.
private func checkInvariants(_ plan: [ReadRequest], points: [PointSpec], timing: ProfileTiming) {
    for point in points {
        #expect(plan.contains { $0.covers(point) }, "\(point.name) is not covered by \(plan)")
    }
    for request in plan {
        let cap =
            request.table.isBitTable
            ? min(2000, 16 * min(timing.maxRegistersPerRead, 125))
            : min(timing.maxRegistersPerRead, 125)
        let oversized = points.contains {
            $0.table == request.table && $0.address == request.address && $0.span == request.count
        }
        #expect(request.count <= cap || oversized, "\(request) exceeds \(cap)")
        if timing.singlePointReads {
            #expect(
                points.contains {
                    $0.table == request.table && $0.address == request.address && $0.span == request.count
                })
        }
    }
    let keys = plan.map { [Int($0.table.readFunctionCode), $0.address, $0.count] }
    #expect(keys == keys.sorted { $0.lexicographicallyPrecedes($1) }, "plan not sorted: \(plan)")
}

@Suite struct PlannerTests {
    @Test(arguments: plannerCases)
    func tricky(_ row: PlannerCase) {
        let plan = ReadPlanner.plan(points: row.points, timing: row.timing)
        #expect(plan.count == row.expectedCount, "\(plan)")
        if let expected = row.expected { #expect(plan == expected) }
        checkInvariants(plan, points: row.points, timing: row.timing)
    }

    @Test(arguments: plannerCases.filter { $0.points.count <= 10 && !$0.timing.singlePointReads })
    func trickyCountsAreTheBruteForceMinimum(_ row: PlannerCase) {
        let plan = ReadPlanner.plan(points: row.points, timing: row.timing)
        let minimum = RegisterTable.allCases.map { table in
            let points = row.points.filter { $0.table == table }
            guard !points.isEmpty else { return 0 }
            let scale = table.isBitTable ? 16 : 1
            let registers = min(row.timing.maxRegistersPerRead, 125)
            return bruteForceMinimum(
                points, maxCount: min(registers * scale, 2000), maxGap: row.timing.maxGap * scale
            )
        }.reduce(0, +)
        #expect(plan.count == minimum)
    }

    @Test(arguments: 0..<8)
    func randomLayoutsMatchTheBruteForceMinimum(_ batch: Int) {
        var random = SplitMix64(seed: 0xB0B + UInt64(batch))
        for _ in 0..<60 {
            let cap = Int.random(in: 2...12, using: &random)
            let gap = Int.random(in: 0...4, using: &random)
            let count = Int.random(in: 1...8, using: &random)
            let points = (0..<count).map { _ in
                holding(Int.random(in: 0..<40, using: &random), [1, 1, 2, 2, 4, 3, 7].randomElement(using: &random)!)
            }
            let timing = ProfileTiming(maxRegistersPerRead: cap, maxGap: gap)
            let plan = ReadPlanner.plan(points: points, timing: timing)
            #expect(
                plan.count == bruteForceMinimum(points, maxCount: cap, maxGap: gap),
                "cap \(cap) gap \(gap) points \(points.map { "\($0.address)+\($0.span)" }) plan \(plan)"
            )
            checkInvariants(plan, points: points, timing: timing)
        }
    }

    @Test func planIsIndependentOfPointOrder() {
        var random = SplitMix64(seed: 7)
        let points = (0..<30).map { _ in holding(Int.random(in: 0..<300, using: &random), 2) }
        let timing = ProfileTiming(maxRegistersPerRead: 40, maxGap: 3)
        let plan = ReadPlanner.plan(points: points, timing: timing)
        #expect(ReadPlanner.plan(points: points.shuffled(using: &random), timing: timing) == plan)
        #expect(ReadPlanner.plan(points: points.reversed(), timing: timing) == plan)
    }

    @Test func assembleBuildsTheImageTheDecoderReads() {
        let points = [holding(0, 2), holding(5), span(.coil, 3)]
        let plan = ReadPlanner.plan(points: points, timing: ProfileTiming())
        #expect(
            plan == [
                ReadRequest(table: .coil, address: 3, count: 1), ReadRequest(table: .holding, address: 0, count: 6),
            ])
        let image = ReadPlan.assemble([
            (plan[0], [1]),
            (plan[1], [0x42F6, 0xE979, 9, 9, 9, 77, 0xDEAD]),
        ])
        #expect(image[.coil, 3] == 1)
        #expect(image[.holding, 1] == 0xE979)
        #expect(image[.holding, 5] == 77)
        #expect(image[.holding, 6] == nil, "words beyond the request are not stored")
    }

    @Test func shortResponseLeavesRegistersMissing() {
        let request = ReadRequest(table: .input, address: 10, count: 4)
        let image = ReadPlan.assemble([(request, [1, 2])])
        #expect(image[.input, 11] == 2)
        #expect(image[.input, 12] == nil)
    }
}
