import PantauCore

/// Lines of `pantau journal export`: the body as text (it is JSON), times as milliseconds and RFC 3339.
enum JournalExport {
    static let csvHeader = "seq,kind,device,topic,acquired_at,acquired_utc,qos,retain,content_type,body"

    /// One RFC 4180 record (without the line break).
    static func csvLine(_ record: JournalRecord) -> String {
        let m = record.message
        let fields = [
            "\(record.seq)", m.kind.name, m.device ?? "", m.topic, "\(m.acquiredAt)",
            JournalFiles.rfc3339(m.acquiredAt), "\(m.qos)", m.retain ? "true" : "false", m.contentType,
            String(decoding: m.body, as: UTF8.self),
        ]
        return fields.map(csvField).joined(separator: ",")
    }

    /// Quoted when it holds a comma, a quote or a line break; quotes inside are doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        var out = "\""
        for character in text {
            if character == "\"" { out.append("\"") }
            out.append(character)
        }
        out.append("\"")
        return out
    }

    /// One JSON object (without the line break). `device` is null for gateway messages.
    static func jsonLine(_ record: JournalRecord) -> String {
        let m = record.message
        let jsonString = JSONString.quoted
        let device = m.device.map(jsonString) ?? "null"
        return "{\"seq\":\(record.seq),\"kind\":\(jsonString(m.kind.name)),\"device\":\(device),"
            + "\"topic\":\(jsonString(m.topic)),\"acquired_at\":\(m.acquiredAt),"
            + "\"acquired_utc\":\(jsonString(JournalFiles.rfc3339(m.acquiredAt))),\"qos\":\(m.qos),"
            + "\"retain\":\(m.retain),\"content_type\":\(jsonString(m.contentType)),"
            + "\"body\":\(jsonString(String(decoding: m.body, as: UTF8.self)))}"
    }
}
