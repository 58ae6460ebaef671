/// A billing account, often a household.
public struct Account: Sendable, Equatable {
    package init(id: String, name: String, status: Status, timeZone: String, plan: String? = nil, createdAt: String, updatedAt: String) {
        self.id = id
        self.name = name
        self.status = status
        self.timeZone = timeZone
        self.plan = plan
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

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

/// Usage limits an account's plan sets (docs/cdr.md "Plans and gauges"). A limit left nil is not
/// limited. `hard` refuses a call over a limit (403 Plan limit reached); `soft` lets it through and
/// only records it.
public struct Plan: Sendable, Equatable {
    public enum Period: String, Sendable, CaseIterable { case day, month }
    public enum Enforcement: String, Sendable, CaseIterable { case hard, soft }
    public var name: String
    public var period: Period
    public var maxMinutes: Int?
    public var maxCalls: Int?
    public var maxConcurrent: Int?
    public var enforcement: Enforcement
    public var createdAt: String
    public var updatedAt: String

    public init(name: String, period: Period = .month, maxMinutes: Int? = nil, maxCalls: Int? = nil, maxConcurrent: Int? = nil,
                enforcement: Enforcement = .hard, createdAt: String = "", updatedAt: String = "") {
        self.name = name
        self.period = period
        self.maxMinutes = maxMinutes
        self.maxCalls = maxCalls
        self.maxConcurrent = maxConcurrent
        self.enforcement = enforcement
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A person within an account, with their own credentials and devices.
public struct User: Sendable, Equatable {
    package init(id: String, accountID: String, displayName: String, role: Role, sipUsername: String, status: Status, credentials: Credentials? = nil, grants: Set<String>, createdAt: String, updatedAt: String) {
        self.id = id
        self.accountID = accountID
        self.displayName = displayName
        self.role = role
        self.sipUsername = sipUsername
        self.status = status
        self.credentials = credentials
        self.grants = grants
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

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
        package init(realm: String, ha1MD5: String, ha1SHA256: String) {
            self.realm = realm
            self.ha1MD5 = ha1MD5
            self.ha1SHA256 = ha1SHA256
        }

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
    package init(number: String, accountID: String, kind: Kind, ownerUserID: String? = nil, providerID: String? = nil, delivery: Delivery = Delivery(), createdAt: String, updatedAt: String) {
        self.number = number
        self.accountID = accountID
        self.kind = kind
        self.ownerUserID = ownerUserID
        self.providerID = providerID
        self.delivery = delivery
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public enum Kind: String, Sendable, CaseIterable { case household, personal }
    public var number: String
    public var accountID: String
    public var kind: Kind
    /// The owning user of a personal number.
    public var ownerUserID: String?
    /// The carrier that gives the number its connectivity.
    public var providerID: String?
    /// How a call to the number rings its users' devices.
    public var delivery: Delivery = Delivery()
    public var createdAt: String
    public var updatedAt: String
}

/// How calls to a number reach the callee's devices and where a transfer mode sends them.
public struct Delivery: Sendable, Equatable {
    public enum Fork: String, Sendable, CaseIterable { case parallel, serial }
    /// A transfer mode either answers `302 Moved Temporarily` (the caller's side re-dials) or proxies
    /// the call to the target itself (the call stays in Tandem's path).
    public enum Transfer: String, Sendable, CaseIterable { case redirect, proxy }
    public static let ringTimeoutRange = 5...300
    /// Seconds the devices ring before the call fails over (voicemail) or ends unanswered.
    public var ringTimeout: Int
    public var fork: Fork
    public var transfer: Transfer

    public init(ringTimeout: Int = 30, fork: Fork = .parallel, transfer: Transfer = .redirect) {
        self.ringTimeout = ringTimeout
        self.fork = fork
        self.transfer = transfer
    }
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
    package init(id: String, name: String, kind: Kind, hops: [String], trustedSources: [String], idScheme: IDScheme, domain: String? = nil, webhookURL: String? = nil, currency: String, ratePerMinute: Int, monthlyFee: Int, createdAt: String, updatedAt: String, webhookSecret: String? = nil) {
        self.id = id
        self.name = name
        self.kind = kind
        self.hops = hops
        self.trustedSources = trustedSources
        self.idScheme = idScheme
        self.domain = domain
        self.webhookURL = webhookURL
        self.currency = currency
        self.ratePerMinute = ratePerMinute
        self.monthlyFee = monthlyFee
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.webhookSecret = webhookSecret
    }

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
    /// Key of the HMAC-SHA256 signature on webhook deliveries (docs/events.md); minted when a
    /// webhook URL is first set.
    public var webhookSecret: String? = nil
}

/// A provider's offer in the catalog.
public struct App: Sendable, Equatable {
    package init(id: String, providerID: String, name: String, kind: String, position: Int, onFailure: OnFailure, hop: String? = nil, createdAt: String, updatedAt: String) {
        self.id = id
        self.providerID = providerID
        self.name = name
        self.kind = kind
        self.position = position
        self.onFailure = onFailure
        self.hop = hop
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

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
    package init(number: String, appID: String, providerID: String, status: Status, subscriberID: String, routing: String, activatedAt: String, deactivatedAt: String? = nil) {
        self.number = number
        self.appID = appID
        self.providerID = providerID
        self.status = status
        self.subscriberID = subscriberID
        self.routing = routing
        self.activatedAt = activatedAt
        self.deactivatedAt = deactivatedAt
    }

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
    package init(id: Int, time: String, type: String, source: String, subject: String? = nil, payload: String) {
        self.id = id
        self.time = time
        self.type = type
        self.source = source
        self.subject = subject
        self.payload = payload
    }

    public var id: Int
    public var time: String
    public var type: String
    public var source: String
    public var subject: String?
    /// JSON text.
    public var payload: String
}

/// A user's availability: modes saying whether and how calls reach them, profiles whose weekly rules
/// switch between modes, an explicit override, and the callers treated specially.
public struct Availability: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case available
        case notAvailable = "not_available"
        case transfer
        /// Calls still ring; the user's state is reported as unknown to everyone.
        case hidden
    }
    /// How the user is told of calls a mode holds back.
    public enum Notify: String, Sendable, CaseIterable { case ring, silent, none }
    /// Who may learn the user's connectability: everyone, or only the `authorised` callers.
    public enum Sharing: String, Sendable, CaseIterable { case everyone, authorised }

    public struct Mode: Sendable, Equatable {
        public var name: String
        public var state: State
        /// E.164 number (or SIP username) a `transfer` mode sends calls to.
        public var target: String?
        public var notify: Notify
        /// Callers the mode applies to (empty: everyone) and callers it never applies to; a caller it
        /// does not apply to gets the profile's default mode. Entries are E.164 numbers or user ids.
        public var allow: [String]
        public var deny: [String]

        public init(name: String, state: State, target: String? = nil, notify: Notify = .ring, allow: [String] = [], deny: [String] = []) {
            self.name = name
            self.state = state
            self.target = target
            self.notify = notify
            self.allow = allow
            self.deny = deny
        }
    }

    /// A window in the account's time zone: on `days` (1 = Monday … 7 = Sunday) from `start` to `end`
    /// (minutes after midnight, local wall-clock time), `mode` is active. `end <= start` means the
    /// window runs past midnight into the next day. A rule may also be held to a calendar — dates
    /// (holidays, a day off), days of the month, weeks of the month, days of the year — and holds only
    /// on a day that meets every condition it has; the day a window starts on is the one checked.
    public struct Rule: Sendable, Equatable {
        public var days: Set<Int>
        public var start: Int
        public var end: Int
        public var mode: String
        /// Local dates, as days since 1970-01-01, in inclusive ranges; empty: every date.
        public var dates: [ClosedRange<Int64>]
        /// Days of the month, 1…31, or -1 for the month's last day; empty: every day.
        public var monthDays: Set<Int>
        /// Which occurrence of its weekday in the month a day is, 1…5, or -1 for the last one
        /// ("the first Monday", with `days` = Monday); empty: every week.
        public var monthWeeks: Set<Int>
        /// Days of the year as month × 100 + day (1225 is 25 December); empty: every day.
        public var yearDays: Set<Int>

        public init(days: Set<Int>, start: Int, end: Int, mode: String, dates: [ClosedRange<Int64>] = [], monthDays: Set<Int> = [],
                    monthWeeks: Set<Int> = [], yearDays: Set<Int> = []) {
            self.days = days
            self.start = start
            self.end = end
            self.mode = mode
            self.dates = dates
            self.monthDays = monthDays
            self.monthWeeks = monthWeeks
            self.yearDays = yearDays
        }

        /// Whether the rule is bound to anything beyond the days of the week.
        public var hasCalendar: Bool { !dates.isEmpty || !monthDays.isEmpty || !monthWeeks.isEmpty || !yearDays.isEmpty }

        /// `dates` as written in a definition: `YYYY-MM-DD` or `YYYY-MM-DD..YYYY-MM-DD`.
        public var dateTexts: [String] {
            dates.map { range in
                range.lowerBound == range.upperBound ? "\(CivilDate(days: range.lowerBound))"
                                                     : "\(CivilDate(days: range.lowerBound))..\(CivilDate(days: range.upperBound))"
            }
        }

        /// `yearDays` as written in a definition: `MM-DD`, in calendar order.
        public var yearDayTexts: [String] {
            yearDays.sorted().map { day in
                let (month, dayOfMonth) = (day / 100, day % 100)
                return (month < 10 ? "0" : "") + "\(month)-" + (dayOfMonth < 10 ? "0" : "") + "\(dayOfMonth)"
            }
        }
    }

    public struct Profile: Sendable, Equatable {
        public var name: String
        /// The mode when no rule matches, and for callers an active mode does not apply to.
        public var defaultMode: String
        /// Checked in order; the first window containing the moment wins.
        public var rules: [Rule]

        public init(name: String, defaultMode: String = "available", rules: [Rule] = []) {
            self.name = name
            self.defaultMode = defaultMode
            self.rules = rules
        }
    }

    /// `availability.set mode=… until=…`: wins over the rules until it expires (nil: until cleared).
    public struct Override: Sendable, Equatable {
        public var mode: String
        /// Milliseconds since the Unix epoch.
        public var until: Int64?

        public init(mode: String, until: Int64?) {
            self.mode = mode
            self.until = until
        }
    }

    public var userID: String
    public var modes: [Mode]
    public var profiles: [Profile]
    public var activeProfile: String
    public var override: Override?
    /// Callers who reach the user whatever the mode when their INVITE says `Priority: urgent` or
    /// `emergency`.
    public var urgent: [String]
    /// Callers declined with 603.
    public var blocked: [String]
    public var sharing: Sharing
    public var authorised: [String]
    /// Watchers the user refused: their presence subscriptions end (`rejected`) and stay refused.
    public var refused: [String] = []
    public var updatedAt: String
    /// The members of each contact list the entries above name as `list:NAME`, resolved when the
    /// definition is read, so a decision needs no other record.
    public var lists: [String: Set<String>] = [:]

    /// What a user without a stored definition has: always available, shared with everyone.
    public static func standard(userID: String) -> Availability {
        Availability(userID: userID, modes: [Mode(name: "available", state: .available)],
                     profiles: [Profile(name: "default")], activeProfile: "default", override: nil,
                     urgent: [], blocked: [], sharing: .everyone, authorised: [], updatedAt: "")
    }

    public init(userID: String, modes: [Mode], profiles: [Profile], activeProfile: String, override: Override?,
                urgent: [String], blocked: [String], sharing: Sharing, authorised: [String], updatedAt: String) {
        self.userID = userID
        self.modes = modes
        self.profiles = profiles
        self.activeProfile = activeProfile
        self.override = override
        self.urgent = urgent
        self.blocked = blocked
        self.sharing = sharing
        self.authorised = authorised
        self.updatedAt = updatedAt
    }

    public func mode(named name: String) -> Mode? {
        if let mode = modes.first(where: { $0.name == name }) { return mode }
        // Every definition has an implicit `available` mode so a profile can always fall back to it.
        return name == "available" ? Mode(name: "available", state: .available) : nil
    }

    public var profile: Profile? { profiles.first { $0.name == activeProfile } }

    /// `HH:MM` for minutes after midnight, as rules are written.
    public static func clockText(_ minutes: Int) -> String {
        let hours = minutes / 60, rest = minutes % 60
        return (hours < 10 ? "0" : "") + "\(hours):" + (rest < 10 ? "0" : "") + "\(rest)"
    }
}
