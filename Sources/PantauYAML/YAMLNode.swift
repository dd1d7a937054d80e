import CYAML

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

/// Parses YAML with libyaml (Debian's `libyaml`), the parser Yams wraps, without pulling in full Foundation.
public enum YAMLParser {
    /// Parses the first document of `text`. An empty document yields nil.
    public static func parse(_ text: String) throws(YAMLSyntaxError) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLSyntaxError(mark: YAMLMark(line: 1, column: 1), message: "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        return try bytes.withUnsafeMutableBufferPointer { (buffer) throws(YAMLSyntaxError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var document = yaml_document_t()
            guard yaml_parser_load(&parser, &document) == 1 else {
                throw syntaxError(parser)
            }
            defer { yaml_document_delete(&document) }
            guard let root = yaml_document_get_root_node(&document) else { return nil }
            var builder = TreeBuilder(document: &document)
            return try builder.build(root, depth: 0)
        }
    }

    private static func syntaxError(_ parser: yaml_parser_t) -> YAMLSyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        let context = parser.context.map { String(cString: $0) }
        let mark = YAMLMark(line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
        let message = context.map { "\(problem) \($0)" } ?? problem
        return YAMLSyntaxError(mark: mark, message: "YAML syntax: \(message)")
    }
}

/// Walks libyaml's node graph into value types; the only place that reads libyaml's node structs.
private struct TreeBuilder {
    let document: UnsafeMutablePointer<yaml_document_t>

    init(document: UnsafeMutablePointer<yaml_document_t>) { self.document = document }

    /// Aliases can nest documents exponentially ("billion laughs"); refuse absurd depth instead of hanging.
    private static let maximumDepth = 64

    mutating func build(_ node: UnsafeMutablePointer<yaml_node_t>, depth: Int) throws(YAMLSyntaxError) -> YAMLNode {
        let mark = YAMLMark(line: Int(node.pointee.start_mark.line) + 1, column: Int(node.pointee.start_mark.column) + 1)
        guard depth < Self.maximumDepth else {
            throw YAMLSyntaxError(mark: mark, message: "YAML nesting deeper than \(Self.maximumDepth) levels")
        }
        switch node.pointee.type {
        case YAML_SCALAR_NODE:
            let scalar = node.pointee.data.scalar
            let text = scalar.value.withMemoryRebound(to: UInt8.self, capacity: scalar.length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self)
            }
            return YAMLNode(.scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE), mark: mark)
        case YAML_SEQUENCE_NODE:
            var items: [YAMLNode] = []
            var item = node.pointee.data.sequence.items.start
            while let current = item, current != node.pointee.data.sequence.items.top {
                guard let child = yaml_document_get_node(document, current.pointee) else { break }
                items.append(try build(child, depth: depth + 1))
                item = current + 1
            }
            return YAMLNode(.sequence(items), mark: mark)
        case YAML_MAPPING_NODE:
            var pairs: [YAMLPair] = []
            var pair = node.pointee.data.mapping.pairs.start
            while let current = pair, current != node.pointee.data.mapping.pairs.top {
                guard let key = yaml_document_get_node(document, current.pointee.key),
                    let value = yaml_document_get_node(document, current.pointee.value)
                else { break }
                pairs.append(YAMLPair(key: try build(key, depth: depth + 1), value: try build(value, depth: depth + 1)))
                pair = current + 1
            }
            return YAMLNode(.mapping(pairs), mark: mark)
        default:
            return YAMLNode(.scalar("", plain: true), mark: mark)
        }
    }
}
