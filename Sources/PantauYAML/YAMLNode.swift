internal import CYAML

/// A position in a YAML text, 1-based.
public struct YAMLMark: Sendable, Hashable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// A YAML node with the place it starts, so every configuration error can name its line and column.
public struct YAMLNode: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        /// `plain` is false for quoted and block scalars: `"123"` is a string, `123` may be a number.
        case scalar(String, plain: Bool)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public var content: Content
    public var mark: YAMLMark

    public init(_ content: Content, mark: YAMLMark) {
        self.content = content
        self.mark = mark
    }

    /// What kind of node this is, for messages ("a mapping", "a list", "a scalar").
    public var kindDescription: String {
        switch content {
        case .scalar: return "a scalar"
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }

    /// The scalar text, or nil for collections.
    public var scalar: String? {
        if case .scalar(let s, _) = content { return s }
        return nil
    }

    /// The value of `key` when this node is a mapping that has it.
    public func mappingValue(_ key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = content else { return nil }
        return pairs.first { $0.key.scalar == key }?.value
    }

    /// True for a plain `~`, `null` or empty scalar.
    public var isNull: Bool {
        if case .scalar(let s, let plain) = content, plain { return s.isEmpty || s == "~" || s == "null" }
        return false
    }
}

public struct YAMLPair: Sendable, Hashable {
    public var key: YAMLNode
    public var value: YAMLNode

    public init(key: YAMLNode, value: YAMLNode) {
        self.key = key
        self.value = value
    }
}

/// A YAML syntax error, with libyaml's own description of the problem.
public struct YAMLSyntaxError: Error, Sendable, Hashable {
    public var mark: YAMLMark
    public var message: String
}

/// Bounds on what one YAML text may cost, so a hostile file is refused instead of exhausting memory or time.
/// Real configurations and profiles are a few KiB with a nesting depth under 10.
public struct YAMLLimits: Sendable, Hashable {
    /// Size of the text in bytes.
    public var maximumBytes: Int
    /// Nesting depth of lists and mappings (the root collection is level 1).
    public var maximumDepth: Int
    /// Nodes after alias expansion: an alias counts every node of what it refers to ("billion laughs").
    public var maximumNodes: Int

    public init(maximumBytes: Int = 1 << 20, maximumDepth: Int = 64, maximumNodes: Int = 100_000) {
        self.maximumBytes = maximumBytes
        self.maximumDepth = maximumDepth
        self.maximumNodes = maximumNodes
    }

    /// A gateway configuration file: 1 MiB, depth 64, 100 000 nodes.
    public static let configuration = YAMLLimits()
    /// A device profile file: 256 KiB, depth 64, 100 000 nodes.
    public static let profile = YAMLLimits(maximumBytes: 256 << 10)
}

/// Parses YAML with libyaml (Debian's `libyaml`), the parser Yams wraps, without pulling in full Foundation.
/// It reads libyaml's event stream (not its document loader), so depth, node count and alias expansion are
/// bounded while parsing, before libyaml or this code does work proportional to a hostile input.
public enum YAMLParser {
    /// Parses the first document of `text`. An empty document yields nil.
    public static func parse(_ text: String, limits: YAMLLimits = .configuration) throws(YAMLSyntaxError) -> YAMLNode? {
        try parse(bytes: Array(text.utf8), limits: limits)
    }

    /// Parses the first document of UTF-8 `bytes`. Text that is not UTF-8 (UTF-16, invalid sequences, control
    /// characters) is refused with the line and column of the first bad byte.
    public static func parse(bytes: [UInt8], limits: YAMLLimits = .configuration) throws(YAMLSyntaxError) -> YAMLNode? {
        if bytes.count > limits.maximumBytes {
            throw YAMLSyntaxError(
                mark: YAMLMark(line: 1, column: 1),
                message:
                    "the file is larger than \(describeSize(limits.maximumBytes)), the most this kind of file may have")
        }
        if bytes.isEmpty { return nil }
        if bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE])
            || (bytes.count >= 2 && (bytes[0] == 0 || bytes[1] == 0))
        {
            throw YAMLSyntaxError(
                mark: YAMLMark(line: 1, column: 1),
                message: "the file is UTF-16 (or UTF-32): that is not supported, save it as UTF-8")
        }
        if let bad = firstInvalidUTF8(bytes) {
            throw YAMLSyntaxError(
                mark: position(ofByte: bad, in: bytes),
                message: "invalid UTF-8 (byte 0x\(String(bytes[bad], radix: 16, uppercase: true)) at offset \(bad)): "
                    + "save the file as UTF-8"
            )
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLSyntaxError(mark: YAMLMark(line: 1, column: 1), message: "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        var input = bytes
        return try input.withUnsafeMutableBufferPointer { (buffer) throws(YAMLSyntaxError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var builder = EventBuilder(limits: limits)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw syntaxError(parser, bytes: bytes)
                }
                defer { yaml_event_delete(&event) }
                switch try builder.consume(&event) {
                case .more: continue
                case .done(let root): return root
                }
            }
        }
    }

    static func describeSize(_ bytes: Int) -> String {
        if bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }

    /// The offset of the first byte that does not belong to a valid UTF-8 sequence, or nil.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b < 0x80 {
                i += 1
                continue
            }
            let width: Int
            var minimum: UInt32
            var scalar: UInt32
            switch b {
            case 0xC2...0xDF: (width, minimum, scalar) = (2, 0x80, UInt32(b & 0x1F))
            case 0xE0...0xEF: (width, minimum, scalar) = (3, 0x800, UInt32(b & 0x0F))
            case 0xF0...0xF4: (width, minimum, scalar) = (4, 0x10000, UInt32(b & 0x07))
            default: return i
            }
            guard i + width <= n else { return i }
            for k in 1..<width {
                let c = bytes[i + k]
                guard c & 0xC0 == 0x80 else { return i }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return i }
            i += width
        }
        return nil
    }

    /// Line and column (1-based, columns in characters) of the byte at `offset`.
    static func position(ofByte offset: Int, in bytes: [UInt8]) -> YAMLMark {
        var line = 1
        var column = 1
        var i = 0
        let end = min(offset, bytes.count)
        while i < end {
            let b = bytes[i]
            if b == 0x0A || (b == 0x0D && (i + 1 >= bytes.count || bytes[i + 1] != 0x0A)) {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
            i += 1
        }
        return YAMLMark(line: line, column: column)
    }

    private static func syntaxError(_ parser: yaml_parser_t, bytes: [UInt8]) -> YAMLSyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        if parser.error == YAML_READER_ERROR {
            // libyaml gives reader errors (control characters, bad encoding) as a byte offset, not a mark.
            let offset = Int(parser.problem_offset)
            var detail = problem
            if parser.problem_value >= 0 {
                detail += " (character 0x\(String(parser.problem_value, radix: 16, uppercase: true)))"
            }
            return YAMLSyntaxError(mark: position(ofByte: offset, in: bytes), message: "YAML syntax: \(detail)")
        }
        let context = parser.context.map { String(cString: $0) }
        let mark = YAMLMark(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
        let message = context.map { "\(problem) \($0)" } ?? problem
        return YAMLSyntaxError(mark: mark, message: "YAML syntax: \(message)")
    }
}

/// Builds the first document's tree from libyaml events; the only place that reads libyaml's event structs.
private struct EventBuilder {
    enum Step {
        case more
        case done(YAMLNode?)
    }

    /// A list or mapping being filled. A class, so appending to its items does not copy them.
    private final class Frame {
        let isMapping: Bool
        let mark: YAMLMark
        let anchor: String?
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var key: YAMLNode?
        /// Nodes in this collection, itself included, as an alias to it would repeat them.
        var nodes = 1

        init(isMapping: Bool, mark: YAMLMark, anchor: String?) {
            self.isMapping = isMapping
            self.mark = mark
            self.anchor = anchor
        }
    }

    let limits: YAMLLimits
    private var stack: [Frame] = []
    /// Anchored nodes with the number of nodes each expands to.
    private var anchors: [String: (node: YAMLNode, nodes: Int)] = [:]
    private var totalNodes = 0

    init(limits: YAMLLimits) { self.limits = limits }

    private static func mark(_ m: yaml_mark_t) -> YAMLMark {
        YAMLMark(line: Int(m.line) + 1, column: Int(m.column) + 1)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }

    mutating func consume(_ event: inout yaml_event_t) throws(YAMLSyntaxError) -> Step {
        let mark = Self.mark(event.start_mark)
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text: String
            if let value = scalar.value {
                text = String(decoding: UnsafeBufferPointer(start: value, count: scalar.length), as: UTF8.self)
            } else {
                text = ""
            }
            let node = YAMLNode(.scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE), mark: mark)
            return try complete(node, nodes: 1, anchor: Self.string(scalar.anchor), at: mark)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                throw YAMLSyntaxError(
                    mark: mark, message: "YAML syntax: the alias '*\(name)' refers to no anchor defined before it")
            }
            var node = target.node
            node.mark = mark
            return try complete(node, nodes: target.nodes, anchor: nil, at: mark)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            if stack.count >= limits.maximumDepth {
                throw YAMLSyntaxError(mark: mark, message: "YAML nesting deeper than \(limits.maximumDepth) levels")
            }
            if event.type == YAML_SEQUENCE_START_EVENT {
                stack.append(Frame(isMapping: false, mark: mark, anchor: Self.string(event.data.sequence_start.anchor)))
            } else {
                stack.append(Frame(isMapping: true, mark: mark, anchor: Self.string(event.data.mapping_start.anchor)))
            }
            try count(1, at: mark)
            return .more
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return .more }
            let node = YAMLNode(frame.isMapping ? .mapping(frame.pairs) : .sequence(frame.items), mark: frame.mark)
            frame.items = []
            frame.pairs = []
            return try complete(node, nodes: frame.nodes, anchor: frame.anchor, at: frame.mark, counted: true)
        case YAML_DOCUMENT_END_EVENT, YAML_STREAM_END_EVENT:
            return .done(nil)
        default:
            return .more
        }
    }

    private mutating func count(_ n: Int, at mark: YAMLMark) throws(YAMLSyntaxError) {
        totalNodes += n
        if totalNodes > limits.maximumNodes {
            throw YAMLSyntaxError(
                mark: mark,
                message: "YAML document has more than \(limits.maximumNodes) nodes (counting what aliases repeat)")
        }
    }

    /// Hands a finished node to its parent, or returns it as the document's root.
    private mutating func complete(
        _ node: YAMLNode, nodes: Int, anchor: String?, at mark: YAMLMark, counted: Bool = false
    ) throws(YAMLSyntaxError) -> Step {
        if !counted { try count(nodes, at: mark) }
        if let anchor { anchors[anchor] = (node, nodes) }
        guard let top = stack.last else { return .done(node) }
        top.nodes += nodes
        if !top.isMapping {
            top.items.append(node)
        } else if let key = top.key {
            top.pairs.append(YAMLPair(key: key, value: node))
            top.key = nil
        } else {
            top.key = node
        }
        return .more
    }
}
