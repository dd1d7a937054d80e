/// Sparkplug B topic namespace: `spBv1.0/<group>/<type>/<edge node>[/<device>]`.
public struct SparkplugTopics: Sendable, Hashable {
    public static let namespace = "spBv1.0"
    public let group: String
    public let edgeNode: String

    public init(group: String, edgeNode: String) {
        self.group = group
        self.edgeNode = edgeNode
    }

    public var nbirth: String { "\(Self.namespace)/\(group)/NBIRTH/\(edgeNode)" }
    public var ndeath: String { "\(Self.namespace)/\(group)/NDEATH/\(edgeNode)" }
    public var ndata: String { "\(Self.namespace)/\(group)/NDATA/\(edgeNode)" }
    public var ncmd: String { "\(Self.namespace)/\(group)/NCMD/\(edgeNode)" }
    public func dbirth(_ device: String) -> String { "\(Self.namespace)/\(group)/DBIRTH/\(edgeNode)/\(device)" }
    public func ddeath(_ device: String) -> String { "\(Self.namespace)/\(group)/DDEATH/\(edgeNode)/\(device)" }
    public func ddata(_ device: String) -> String { "\(Self.namespace)/\(group)/DDATA/\(edgeNode)/\(device)" }
    public static func state(hostId: String) -> String { "\(namespace)/STATE/\(hostId)" }
}
