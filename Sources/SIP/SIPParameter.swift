/// A `;name=value` parameter of a URI or header, in the order it appeared.
public struct SIPParameter: Sendable, Hashable {
    public var name: String
    /// `nil` for a flag parameter such as `;lr` or a bare `;rport`.
    public var value: String?

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == SIPParameter {
    /// The first parameter with this name, compared case-insensitively (RFC 3261 §19.1.4).
    public func first(named name: String) -> SIPParameter? {
        first { $0.name.caseInsensitiveEquals(name) }
    }

    /// The value of the first parameter with this name; `.some(nil)` for a flag.
    public func value(named name: String) -> String?? {
        first(named: name).map { $0.value }
    }

    public func contains(named name: String) -> Bool {
        first(named: name) != nil
    }
}

extension String {
    /// ASCII case-insensitive comparison, as SIP names are compared; avoids Foundation on hot paths.
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = self.utf8, b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            let lx = (x >= 65 && x <= 90) ? x | 0x20 : x
            let ly = (y >= 65 && y <= 90) ? y | 0x20 : y
            if lx != ly { return false }
        }
        return true
    }

    /// ASCII lower-casing, enough for SIP tokens.
    public var asciiLowercased: String {
        String(decoding: utf8.map { ($0 >= 65 && $0 <= 90) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Without leading and trailing spaces and tabs (SIP's linear white space once unfolded),
    /// without Foundation's Unicode character sets on the call path.
    public var sipTrimmed: String {
        let bytes = utf8
        guard let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        let last = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        if first == bytes.startIndex && last == bytes.index(before: bytes.endIndex) { return self }
        return String(self[first...last])
    }
}
