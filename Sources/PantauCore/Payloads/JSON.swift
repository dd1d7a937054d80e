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

/// JSON written into one growing byte buffer, with `JSONEncoder`'s formatting of numbers and strings
/// (`.withoutEscapingSlashes`): the hot path's encoder, no intermediate values per field.
struct JSONBytes {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// The literals here are ASCII, so their bytes are at `utf8Start` (no closure per call).
    mutating func literal(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// `"key":`, preceded by a comma unless it is the object's first key. Keys are plain ASCII.
    mutating func key(_ k: StaticString, first: Bool = false) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        literal(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// A finite double as `JSONEncoder` writes it: Swift's shortest round-trip `description`, without a `.0` suffix
    /// (cut from the bytes: removing characters from the String cost more than formatting it).
    mutating func number(_ d: Double) {
        var text = d.description
        text.withUTF8 { utf8 in
            let n = utf8.count
            let whole = n >= 2 && utf8[n - 2] == UInt8(ascii: ".") && utf8[n - 1] == UInt8(ascii: "0")
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[..<(whole ? n - 2 : n)]))
        }
    }

    mutating func number(_ n: SenMLNumber) {
        switch n {
        case .double(let d): number(d)
        case .signed(let i): ascii(i.description)
        case .unsigned(let u): ascii(u.description)
        }
    }

    private mutating func ascii(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\b \f \n \r \t` or `\u00xx`, the rest (slashes
    /// and non-ASCII included) as its UTF-8.
    mutating func string(_ s: String) {
        var s = s
        bytes.append(UInt8(ascii: "\""))
        s.withUTF8 { utf8 in
            var clean = utf8.startIndex
            for i in utf8.indices {
                let c = utf8[i]
                guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<i]))
                clean = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(c)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [
                        UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 0xF)],
                    ])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
