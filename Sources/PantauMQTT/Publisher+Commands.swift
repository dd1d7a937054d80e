import PantauCore

/// Where remote commands arrive: a topic filter subscribed on every connect, and a handler that takes each message
/// on it. The handler runs on the publishing thread and must only hand over (it never waits for a bus).
public struct CommandChannel: Sendable {
    /// `<base>/cmd/+`.
    public var filter: String
    /// The topics it owns start with this (`<base>/cmd/`).
    public var prefix: String
    public var handle: @Sendable (MQTTMessage) -> Void

    public init(base: String, handle: @escaping @Sendable (MQTTMessage) -> Void) {
        filter = base + "/cmd/+"
        prefix = base + "/cmd/"
        self.handle = handle
    }

    /// Hands a message on a command topic to the handler; false for other topics.
    func take(_ message: MQTTMessage) -> Bool {
        guard message.topic.hasPrefix(prefix) else { return false }
        handle(message)
        return true
    }
}

/// What the command center asked the publishing thread to send.
struct CommandOutbox: Sendable {
    struct Reply: Sendable {
        var topic: String
        var body: [UInt8]
        var correlationData: [UInt8]?
    }

    var replies: [Reply] = []
    var republish = false
    /// Replies kept at most while the broker is away; older ones are dropped (their audit events are journaled).
    static let limit = 256
}

extension Publisher {
    /// Queues a command reply for `topic` (the request's Response Topic) and wakes the publishing thread.
    public func reply(topic: String, body: [UInt8], correlationData: [UInt8]?) {
        control.withLock { control in
            if control.commandOutbox.replies.count >= CommandOutbox.limit {
                control.commandOutbox.replies.removeFirst()
            }
            control.commandOutbox.replies.append(
                CommandOutbox.Reply(topic: topic, body: body, correlationData: correlationData))
        }
        controlSignal.signal()
    }

    /// Publishes the online status and every retained message again (the `republish` command).
    public func requestRepublish() {
        control.withLock { $0.commandOutbox.republish = true }
        controlSignal.signal()
    }
}
