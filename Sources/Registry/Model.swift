/// A billing account, often a household.
public struct Account: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case active, suspended }
    public var id: String
    public var name: String
    public var status: Status
    /// IANA time zone, for the account's time-of-week rules.
    public var timeZone: String
    /// Plan name for usage limits; nil when none.
    public var plan: String?
    public var createdAt: String
    public var updatedAt: String
}

/// A person within an account, with their own credentials and devices.
public struct User: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable { case primary, member, child }
    public enum Status: String, Sendable, CaseIterable { case active, disabled }
    public var id: String
    public var accountID: String
    public var displayName: String
    public var role: Role
    public var sipUsername: String
    public var status: Status
    /// Digest credentials (RFC 7616): HA1 per algorithm, and the realm they were computed for.
    public var credentials: Credentials?
    /// Services this user may use (`Service`).
    public var grants: Set<String>
    public var createdAt: String
    public var updatedAt: String

    public struct Credentials: Sendable, Equatable {
        public var realm: String
        public var ha1MD5: String
        public var ha1SHA256: String
    }
}

/// What a grant may name: the account's outbound services, or one of its activated apps (`app:ID`).
public enum Service {
    public static let outbound = "outbound"
    public static let international = "international"
    public static let premium = "premium"
    public static let fixed: [String] = [outbound, international, premium]
    public static func app(_ id: String) -> String { "app:\(id)" }

    /// Grants a new user receives when the call names none: a primary may do everything, a member
    /// may call out, a child nothing until the primary grants it.
    public static func defaults(for role: User.Role) -> Set<String> {
        switch role {
        case .primary: [outbound, international, premium]
        case .member: [outbound]
        case .child: []
        }
    }
}

/// An E.164 telephone number owned by an account: the common identifier everything hangs off.
public struct TelephoneNumber: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case household, personal }
    public var number: String
    public var accountID: String
    public var kind: Kind
    /// The owning user of a personal number.
    public var ownerUserID: String?
    /// The carrier that gives the number its connectivity.
    public var providerID: String?
    public var createdAt: String
    public var updatedAt: String
}

/// How a provider knows a subscriber.
public enum IDScheme: Sendable, Equatable {
    /// The telephone number itself.
    case tn
    /// An e-mail address given at activation.
    case email
    /// An opaque identifier Tandem mints, `u` + 8 base-36 characters `@` the provider's domain.
    case generated
    /// A pattern over `{number}`, `{digits}`, `{account}`, `{owner}`, `{random}`.
    case template(String)

    public init?(text: String) {
        switch text {
        case "tn": self = .tn
        case "email": self = .email
        case "generated": self = .generated
        default:
            guard text.hasPrefix("template:"), text.count > 9 else { return nil }
            self = .template(String(text.dropFirst(9)))
        }
    }

    public var text: String {
        switch self {
        case .tn: "tn"
        case .email: "email"
        case .generated: "generated"
        case .template(let pattern): "template:\(pattern)"
        }
    }
}

/// A carrier or a third-party application provider.
public struct Provider: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case carrier, app, both }
    public var id: String
    public var name: String
    public var kind: Kind
    /// SIP URIs of the provider's hops, first preferred.
    public var hops: [String]
    /// Addresses (IP or CIDR) whose requests come from this provider.
    public var trustedSources: [String]
    public var idScheme: IDScheme
    /// Domain of minted identifiers (`generated` scheme).
    public var domain: String?
    public var webhookURL: String?
    /// ISO 4217 code; rates are integer minor units of it.
    public var currency: String
    public var ratePerMinute: Int
    public var monthlyFee: Int
    public var createdAt: String
    public var updatedAt: String
}

/// A provider's offer in the catalog.
public struct App: Sendable, Equatable {
    public enum OnFailure: String, Sendable, CaseIterable { case skip, fail }
    public static let kinds = ["ivr", "screening", "recording", "conferencing", "voicemail", "sms", "transcription", "forwarding", "other"]
    public var id: String
    public var providerID: String
    public var name: String
    public var kind: String
    /// Order in the inbound chain: lower runs first.
    public var position: Int
    public var onFailure: OnFailure
    /// A SIP URI that overrides the provider's first hop for this app.
    public var hop: String?
    public var createdAt: String
    public var updatedAt: String
}

/// A number's subscription to an app.
public struct Activation: Sendable, Equatable {
    public enum Status: String, Sendable { case active, inactive }
    public var number: String
    public var appID: String
    public var providerID: String
    public var status: Status
    /// How the provider knows this subscriber, minted per its `IDScheme`; unique per provider.
    public var subscriberID: String
    /// The hop URI the call path uses to reach the app for this number.
    public var routing: String
    public var activatedAt: String
    public var deactivatedAt: String?
}

/// One record of the event log.
public struct RegistryEvent: Sendable, Equatable {
    public var id: Int
    public var time: String
    public var type: String
    public var source: String
    public var subject: String?
    /// JSON text.
    public var payload: String
}
