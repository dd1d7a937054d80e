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
    public func dcmd(_ device: String) -> String { "\(Self.namespace)/\(group)/DCMD/\(edgeNode)/\(device)" }
    /// Every device command of this node: `spBv1.0/<group>/DCMD/<edge node>/+`.
    public var dcmdFilter: String { "\(Self.namespace)/\(group)/DCMD/\(edgeNode)/+" }
    /// The device a DCMD topic of this node names, or nil for another topic.
    public func dcmdDevice(_ topic: String) -> String? {
        let prefix = "\(Self.namespace)/\(group)/DCMD/\(edgeNode)/"
        guard topic.hasPrefix(prefix) else { return nil }
        let device = topic.dropFirst(prefix.count)
        return device.isEmpty || device.contains("/") ? nil : String(device)
    }
    public static func state(hostId: String) -> String { "\(namespace)/STATE/\(hostId)" }
}
