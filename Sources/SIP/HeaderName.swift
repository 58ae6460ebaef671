/// Header names: long and compact forms (RFC 3261 §7.3.3 and the extensions that define compact forms).
public enum HeaderName {
    /// Lower-cased long form → compact letter.
    static let compactForms: [String: String] = [
        "call-id": "i", "contact": "m", "content-encoding": "e", "content-length": "l",
        "content-type": "c", "from": "f", "subject": "s", "supported": "k", "to": "t", "via": "v",
        "event": "o", "refer-to": "r", "referred-by": "b", "allow-events": "u", "accept-contact": "a",
        "reject-contact": "j", "request-disposition": "d", "session-expires": "x", "identity": "y",
    ]
    static let longForms: [String: String] = Dictionary(uniqueKeysWithValues: compactForms.map { ($1, $0) })

    /// The lower-cased long form of a header name, whichever form it is given in.
    public static func canonical(_ name: String) -> String {
        let lower = name.asciiLowercased
        return longForms[lower] ?? lower
    }

    /// The compact letter of a header name, if it has one.
    public static func compact(_ name: String) -> String? {
        compactForms[canonical(name)]
    }

    /// Whether two header names denote the same header (case-insensitive, long or compact).
    public static func same(_ a: String, _ b: String) -> Bool {
        canonical(a) == canonical(b)
    }
}
