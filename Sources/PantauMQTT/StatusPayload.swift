import PantauCore

/// The retained gateway status on `TopicScheme.status`: `online` on connect, `offline` as the Will and on stop.
enum StatusPayload {
    static func online(version: String, at time: UnixMillis) -> [UInt8] {
        Array("{\"state\":\"online\",\"version\":\(quoted(version)),\"ts\":\(time)}".utf8)
    }

    /// `reason` is `connection lost` for the Will (the broker sends it when we vanish) and `stopped` on a clean stop.
    static func offline(reason: String, version: String, at time: UnixMillis) -> [UInt8] {
        Array(
            "{\"state\":\"offline\",\"reason\":\(quoted(reason)),\"version\":\(quoted(version)),\"ts\":\(time)}".utf8)
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
