import Testing
import JSON

@Suite struct JSONValueTests {
    @Test func roundTrips() throws {
        let text = #"{"a":[1,-2,3.5,true,false,null],"b":"x\"y\\z\n\u00e9\ud83d\ude00","c":{}}"#
        let value = try JSONValue.parse(text)
        #expect(value["a"] == [1, -2, .double(3.5), true, false, nil])
        #expect(value["b"] == .string("x\"y\\z\né😀"))
        #expect(try JSONValue.parse(value.description) == value)
        #expect(try JSONValue.parse(value.pretty) == value)
        #expect(try JSONValue.parse("9223372036854775807") == .integer(Int64.max))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "tru", "\"\\x\"", "\"a", "[1] 2", "\"\u{01}\"", "\"\\ud800\"",
                      String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func refusesInvalidText(_ text: String) {
        #expect(throws: JSONParseError.self) { _ = try JSONValue.parse(text) }
    }

    @Test func serializesSortedAndEscaped() {
        let value: JSONValue = ["b": 1, "a": .string("\u{1}\t")]
        #expect(value.description == #"{"a":"\u0001\t","b":1}"#)
    }
}
