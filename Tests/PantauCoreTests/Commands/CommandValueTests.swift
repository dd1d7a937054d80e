import PantauCore
import Testing

/// `CommandValue` is the one JSON form of a point's value: in command results and in `pantau read --json`.
@Suite struct CommandValueTests {
    static func json(_ value: CommandValue?) -> String {
        struct Box: Encodable { var value: CommandValue? }
        return String(decoding: PayloadEncoder.encode(Box(value: value)), as: UTF8.self)
    }

    @Test(arguments: [
        (PointValue.number(21.5), #"{"value":21.5}"#),
        (.integer(9_007_199_254_740_993), #"{"value":9007199254740993}"#),
        (.integer(-9_223_372_036_854_775_808), #"{"value":-9223372036854775808}"#),
        (.integer(18_446_744_073_709_551_615), #"{"value":18446744073709551615}"#),
        (.text("ON"), #"{"value":"ON"}"#),
        (.flag(true), #"{"value":true}"#),
    ])
    func everyKindWrittenExactly(value: PointValue, expected: String) {
        #expect(Self.json(CommandValue(value)) == expected)
    }

    @Test("no value: null in a command result, no key at all where the field is optional")
    func absentValue() {
        #expect(Self.json(CommandValue(nil)) == #"{"value":null}"#)
        #expect(Self.json(nil) == "{}")
    }

    @Test("a non-finite number is written as null, never as a number")
    func nonFinite() {
        #expect(Self.json(CommandValue(.number(.nan))) == #"{"value":null}"#)
    }
}
