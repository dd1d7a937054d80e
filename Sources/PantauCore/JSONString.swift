/// The one escaper for text that goes out as a JSON string literal (journal export, quoted log values): the hot
/// path's `JSONBytes.string`, so exports, logs and payloads escape alike.
public enum JSONString {
    /// `text` as a JSON string literal with its quotes: `"` and `\` escaped, control characters as `\b \f \n \r \t`
    /// or `\u00xx`, everything else as it is.
    public static func quoted(_ text: String) -> String {
        var out = JSONBytes(capacity: text.utf8.count + 2)
        out.string(text)
        return String(decoding: out.bytes, as: UTF8.self)
    }
}
