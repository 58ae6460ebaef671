/// One registered contact of an address-of-record (RFC 3261 §10): where a user's device can be
/// reached, until when, and how the REGISTER that made it arrived (for NAT traversal, RFC 3581).
public struct Binding: Sendable, Equatable {
    /// The address-of-record: the user's SIP username, or one of their personal numbers.
    public var aor: String
    /// The Contact URI as the device sent it.
    public var contact: String
    public var userID: String
    /// `+sip.instance` (RFC 5626 §4.1): the device, whatever address it registers from.
    public var instance: String?
    /// `reg-id` (RFC 5626 §4.2).
    public var regID: Int?
    /// q-value in thousandths (RFC 3261 §20.10): 1000 unless the contact says otherwise.
    public var q: Int
    /// Milliseconds since the Unix epoch.
    public var expiresAt: Int64
    public var callID: String
    public var cseq: UInt32
    /// Path header values (RFC 3327), top first: the Route set of requests to this contact.
    public var path: [String]
    /// `udp` or `tcp`: how the REGISTER arrived.
    public var transport: String
    /// `host:port` the REGISTER came from (after any NAT).
    public var source: String
    /// The listen point it arrived on (`udp:127.0.0.1:5060`), so requests leave from the same one.
    public var local: String
    /// The REGISTER came from another address than its Via names (RFC 3581): the device is behind a
    /// NAT, so requests go to `source`, through the NAT binding it opened, not to the Contact.
    public var behindNAT: Bool
    public var userAgent: String?
    public var registeredAt: Int64
    public var updatedAt: Int64
    /// The TCP connection it arrived on, while this process lives; never stored.
    public var connection: UInt64?

    public init(aor: String, contact: String, userID: String, instance: String? = nil, regID: Int? = nil, q: Int = 1000,
                expiresAt: Int64, callID: String, cseq: UInt32, path: [String] = [], transport: String, source: String,
                local: String, behindNAT: Bool = false, userAgent: String? = nil, registeredAt: Int64, updatedAt: Int64, connection: UInt64? = nil) {
        self.aor = aor
        self.contact = contact
        self.userID = userID
        self.instance = instance
        self.regID = regID
        self.q = q
        self.expiresAt = expiresAt
        self.callID = callID
        self.cseq = cseq
        self.path = path
        self.transport = transport
        self.source = source
        self.local = local
        self.behindNAT = behindNAT
        self.userAgent = userAgent
        self.registeredAt = registeredAt
        self.updatedAt = updatedAt
        self.connection = connection
    }

    /// Whole seconds left before the binding expires (never negative).
    public func secondsLeft(now: Int64) -> Int { Int(max(0, (expiresAt - now + 999) / 1000)) }
}

/// What happened to one binding; each but a refresh is recorded as a `registration.changed` event.
public struct BindingChange: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A new contact.
        case added
        /// The same contact registered again (new expiry, maybe new source).
        case refreshed
        /// Another contact of the same device (`+sip.instance`) took its place.
        case replaced
        /// Removed by the device (expires=0 or `*`) or by an operator.
        case removed
        /// Its time ran out.
        case expired
    }
    public var kind: Kind
    public var binding: Binding

    public init(_ kind: Kind, _ binding: Binding) {
        self.kind = kind
        self.binding = binding
    }
}

/// Where the bindings of a user are looked up: the location service, as the decision sees it.
public protocol BindingLookup: Sendable {
    /// The user's bindings, as stored (expired ones may linger until the next sweep).
    func bindings(userID: String) -> [Binding]
}
