import PantauYAML

/// Reads YAML nodes into validated values, collecting every problem with its place instead of stopping at the first.
public final class NodeReader {
    public let file: String
    public private(set) var diagnostics: [Diagnostic] = []

    public init(file: String) { self.file = file }

    public func location(_ mark: YAMLMark) -> SourceLocation {
        SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    public func error(_ node: YAMLNode, _ message: String) { error(at: node.mark, message) }

    public func error(at mark: YAMLMark, _ message: String) {
        diagnostics.append(Diagnostic(location(mark), message))
    }

    /// Parses `text`; a syntax error becomes a diagnostic and the result is nil.
    public func parseDocument(_ text: String, limits: YAMLLimits = .configuration) -> YAMLNode? {
        parseDocument(bytes: Array(text.utf8), limits: limits)
    }

    /// Parses UTF-8 `bytes` within `limits`; a syntax, encoding or limit error becomes a diagnostic and the result
    /// is nil.
    public func parseDocument(bytes: [UInt8], limits: YAMLLimits) -> YAMLNode? {
        do {
            return try YAMLParser.parse(bytes: bytes, limits: limits)
        } catch {
            self.error(at: error.mark, error.message)
            return nil
        }
    }

    public func mapping(_ node: YAMLNode, what: String) -> MappingReader? {
        guard case .mapping = node.content else {
            error(node, "\(what) must be a mapping (key: value), found \(node.kindDescription)")
            return nil
        }
        return MappingReader(node: node, reader: self, what: what)
    }

    public func list(_ node: YAMLNode, what: String) -> [YAMLNode]? {
        guard case .sequence(let items) = node.content else {
            error(node, "\(what) must be a list, found \(node.kindDescription)")
            return nil
        }
        return items
    }

    public func string(_ node: YAMLNode, what: String) -> String? {
        guard let text = node.scalar, !node.isNull else {
            error(node, "\(what) must be a text value, found \(node.isNull ? "nothing" : node.kindDescription)")
            return nil
        }
        return text
    }

    public func int(_ node: YAMLNode, what: String, range: ClosedRange<Int>? = nil) -> Int? {
        guard let text = node.scalar, let value = Self.parseInt(text) else {
            error(node, "\(what) must be a whole number, found \(describe(node))")
            return nil
        }
        return inRange(value, range, node, what: what)
    }

    public func double(_ node: YAMLNode, what: String, range: ClosedRange<Double>? = nil) -> Double? {
        guard let text = node.scalar, let value = Self.parseDouble(text) else {
            error(node, "\(what) must be a number, found \(describe(node))")
            return nil
        }
        return inRange(value, range, node, what: what)
    }

    /// The value if it is within `range` (or there is none); otherwise an error naming both bounds, and nil.
    private func inRange<T: Comparable>(_ value: T, _ range: ClosedRange<T>?, _ node: YAMLNode, what: String) -> T? {
        if let range, !range.contains(value) {
            error(node, "\(what) must be between \(range.lowerBound) and \(range.upperBound), found \(value)")
            return nil
        }
        return value
    }

    public func bool(_ node: YAMLNode, what: String) -> Bool? {
        switch node.scalar {
        case "true": return true
        case "false": return false
        default:
            error(node, "\(what) must be true or false, found \(describe(node))")
            return nil
        }
    }

    public func interval(_ node: YAMLNode, what: String, minimum: Interval? = nil) -> Interval? {
        guard let text = node.scalar, !node.isNull else {
            error(node, "\(what) must be a duration such as 500ms, 10s, 5m, 1h or 7d, found \(describe(node))")
            return nil
        }
        let value: Interval
        switch Interval.parse(text) {
        case .success(let v): value = v
        case .failure(.notADuration):
            error(node, "\(what) must be a duration such as 500ms, 10s, 5m, 1h or 7d, found \(describe(node))")
            return nil
        case .failure(.negative):
            error(node, "\(what) must not be negative, found \(describe(node))")
            return nil
        case .failure(.tooLong):
            error(node, "\(what) is too long: at most \(Interval.maximum) (3650 days), found \(describe(node))")
            return nil
        }
        if let minimum, value < minimum {
            error(node, "\(what) must be at least \(minimum), found \(value)")
            return nil
        }
        return value
    }

    /// The largest size a configuration may give (1 TiB), far beyond any journal on a field board.
    public static let maximumByteSize: Int64 = 1 << 40

    /// A size in bytes: `1048576`, `512KiB`, `256MiB`, `1GiB` (also KB, MB, GB as powers of 1000).
    public func byteSize(_ node: YAMLNode, what: String) -> Int64? {
        guard let text = node.scalar?.trimmedWhitespace(), !node.isNull else {
            error(node, "\(what) must be a size such as 64MiB or 1GiB, found \(describe(node))")
            return nil
        }
        switch Self.parseByteSize(text) {
        case .success(let value) where value > 0:
            return value
        case .failure(.tooLarge):
            error(node, "\(what) is too large: at most 1TiB, found \(describe(node))")
            return nil
        default:
            error(node, "\(what) must be a size such as 64MiB or 1GiB, found \(describe(node))")
            return nil
        }
    }

    func describe(_ node: YAMLNode) -> String {
        switch node.content {
        case .scalar(let s, _): return node.isNull ? "nothing" : "'\(s)'"
        default: return node.kindDescription
        }
    }

    static func parseInt(_ text: String) -> Int? {
        let t = text.trimmedWhitespace()
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return Int(t.dropFirst(2), radix: 16) }
        return Int(t)
    }

    static func parseDouble(_ text: String) -> Double? {
        let t = text.trimmedWhitespace()
        if t.hasPrefix("0x") || t.hasPrefix("0X") { return parseInt(t).map(Double.init) }
        guard let v = Double(t), v.isFinite else { return nil }
        return v
    }

    enum ByteSizeError: Error { case notASize, tooLarge }

    /// Parses a size, refusing what does not fit `maximumByteSize` (including `inf` and `1e30GiB`) without trapping.
    static func parseByteSize(_ text: String) -> Result<Int64, ByteSizeError> {
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("KB", 1000), ("MB", 1_000_000),
            ("GB", 1_000_000_000), ("TB", 1_000_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let v = Double(String(text.dropLast(suffix.count)).trimmedWhitespace()), !v.isNaN, v >= 0 else {
                return .failure(.notASize)
            }
            let bytes = (v * Double(factor)).rounded()
            guard bytes <= Double(maximumByteSize), let exact = Int64(exactly: bytes) else {
                return .failure(.tooLarge)
            }
            return .success(exact)
        }
        if let v = Int64(text) {
            return v <= maximumByteSize ? .success(v) : .failure(.tooLarge)
        }
        if text.allSatisfy(\.isNumber) && !text.isEmpty { return .failure(.tooLarge) }
        return .failure(.notASize)
    }
}

/// Reads one mapping: tracks which keys were asked for, so unknown keys are reported with a suggestion.
public final class MappingReader {
    public let node: YAMLNode
    public let reader: NodeReader
    public var what: String
    private var pairs: [String: YAMLPair] = [:]
    private var order: [String] = []
    private var queried: Set<String> = []

    init(node: YAMLNode, reader: NodeReader, what: String) {
        self.node = node
        self.reader = reader
        self.what = what
        guard case .mapping(let list) = node.content else { return }
        for pair in list {
            guard let key = pair.key.scalar else {
                reader.error(pair.key, "keys in \(what) must be plain names, found \(pair.key.kindDescription)")
                continue
            }
            if pairs[key] != nil {
                reader.error(pair.key, "duplicate key '\(key)' in \(what)")
                continue
            }
            pairs[key] = pair
            order.append(key)
        }
    }

    public func has(_ key: String) -> Bool {
        queried.insert(key)
        return pairs[key].map { !$0.value.isNull } ?? false
    }

    public func value(_ key: String, required: Bool = false) -> YAMLNode? {
        queried.insert(key)
        guard let pair = pairs[key], !pair.value.isNull else {
            if required {
                if let pair = pairs[key] {
                    reader.error(pair.value, "'\(key)' in \(what) needs a value")
                } else {
                    reader.error(node, "\(what) is missing the required key '\(key)'")
                }
            }
            return nil
        }
        return pair.value
    }

    private func label(_ key: String) -> String { "'\(key)' in \(what)" }

    public func string(_ key: String, required: Bool = false) -> String? {
        value(key, required: required).flatMap { reader.string($0, what: label(key)) }
    }

    public func int(_ key: String, required: Bool = false, range: ClosedRange<Int>? = nil) -> Int? {
        value(key, required: required).flatMap { reader.int($0, what: label(key), range: range) }
    }

    public func double(_ key: String, required: Bool = false, range: ClosedRange<Double>? = nil) -> Double? {
        value(key, required: required).flatMap { reader.double($0, what: label(key), range: range) }
    }

    public func bool(_ key: String, required: Bool = false) -> Bool? {
        value(key, required: required).flatMap { reader.bool($0, what: label(key)) }
    }

    public func interval(_ key: String, required: Bool = false, minimum: Interval? = nil) -> Interval? {
        value(key, required: required).flatMap { reader.interval($0, what: label(key), minimum: minimum) }
    }

    public func byteSize(_ key: String, required: Bool = false) -> Int64? {
        value(key, required: required).flatMap { reader.byteSize($0, what: label(key)) }
    }

    public func mapping(_ key: String, required: Bool = false) -> MappingReader? {
        value(key, required: required).flatMap { reader.mapping($0, what: label(key)) }
    }

    public func list(_ key: String, required: Bool = false) -> [YAMLNode]? {
        value(key, required: required).flatMap { reader.list($0, what: label(key)) }
    }

    /// One of `choices`, with the choices listed in the error.
    public func choice<T>(_ key: String, _ choices: [(String, T)], required: Bool = false) -> T? {
        guard let node = value(key, required: required) else { return nil }
        guard let text = reader.string(node, what: label(key)) else { return nil }
        if let match = choices.first(where: { $0.0 == text }) { return match.1 }
        reader.error(node, "\(label(key)) must be one of \(choices.map(\.0).joined(separator: ", ")), found '\(text)'")
        return nil
    }

    /// Reports every key that no reader asked for, suggesting the closest known key.
    public func finish() {
        for key in order where !queried.contains(key) {
            guard let pair = pairs[key] else { continue }
            var message = "unknown key '\(key)' in \(what)"
            if let suggestion = queried.min(by: { editDistance($0, key) < editDistance($1, key) }),
                editDistance(suggestion, key) <= max(2, key.count / 3)
            {
                message += " (did you mean '\(suggestion)'?)"
            }
            reader.error(pair.key, message)
        }
    }
}

/// Levenshtein distance, for "did you mean" hints.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
