import RegistryModel

/// What routing reads of the registry and the location service. `RegistrySnapshot` plus the
/// gateway's view of live bindings is the real one; tests hand in tables.
public protocol RoutingDirectory {
    func number(_ e164: String) -> NumberEntry?
    func account(_ id: String) -> Record<Account>?
    func user(_ id: String) -> Record<User>?
    func user(sipUsername: String) -> Record<User>?
    func users(inAccount accountID: String) -> [Record<User>]
    func availability(of userID: String) -> Record<Availability>?
    func activeActivations(of number: String) -> [Activation]
    func app(_ id: String) -> Record<App>?
    func provider(_ id: String) -> Record<Provider>?
    /// Whether the user has at least one live binding.
    func isRegistered(_ userID: String) -> Bool
}

/// Where a request came from, once authentication has decided what to believe.
public enum Origin: Sendable, Equatable {
    /// One of Tandem's users, authenticated.
    case user(String)
    /// A provider's trusted source (a carrier delivering a call, an app provider placing one).
    case provider(String)
    /// `auth.trusted_sources`: a peer Tandem proxies for (a PBX, a test harness).
    case peer
    /// An app of a chain handing the call back: `step` is the position in the chain it ran at.
    case chainReturn(provider: String, step: Int)
}

/// The facts of one new call that routing decides on.
public struct CallFacts: Sendable {
    public var origin: Origin
    /// The asserted E.164 number of the caller, if any.
    public var callerNumber: String?
    /// The Request-URI's user part as dialled.
    public var dialled: String
    /// The `Priority` header (RFC 3261 §20.26), lower-cased.
    public var priority: String?

    public init(origin: Origin, callerNumber: String?, dialled: String, priority: String? = nil) {
        self.origin = origin
        self.callerNumber = callerNumber
        self.dialled = dialled
        self.priority = priority
    }

    var caller: CallerIdentity {
        if case .user(let id) = origin { return CallerIdentity(number: callerNumber, userID: id) }
        return CallerIdentity(number: callerNumber)
    }

    var isUrgent: Bool { priority == "urgent" || priority == "emergency" }
}

/// Which dialplan applies to which origin, and what exists beyond the registry.
public struct RoutingPolicy: Sendable {
    public var userDialplan: String?
    public var providerDialplan: String?
    public var peerDialplan: String?
    /// `routing.default_route` is set: numbers Tandem does not own can leave through it.
    public var hasDefaultRoute: Bool
    /// How many transfers one call may follow before Tandem stops (loop safety).
    public var maxTransfers: Int

    public init(userDialplan: String? = nil, providerDialplan: String? = nil, peerDialplan: String? = nil,
                hasDefaultRoute: Bool = false, maxTransfers: Int = 3) {
        self.userDialplan = userDialplan
        self.providerDialplan = providerDialplan
        self.peerDialplan = peerDialplan
        self.hasDefaultRoute = hasDefaultRoute
        self.maxTransfers = maxTransfers
    }

    func dialplan(for origin: Origin) -> String? {
        switch origin {
        case .user: userDialplan
        case .provider, .chainReturn: providerDialplan
        case .peer: peerDialplan
        }
    }
}

/// One app of the path a call takes, as the chain or the voicemail fallback.
public struct AppHop: Sendable, Equatable {
    public var appID: String
    public var kind: String
    public var providerID: String
    /// How the provider knows the subscriber (P-Served-User, RFC 5502).
    public var subscriberID: String
    /// The SIP URI the call goes to.
    public var uri: String
    public var onFailure: App.OnFailure
    /// The position in the chain (0 first), carried in the signed return route.
    public var step: Int
}

/// How a call reaches callee users' devices.
public struct Delivering: Sendable, Equatable {
    public var number: String?
    /// The users whose devices ring, in order (serial forking follows it).
    public var users: [String]
    public var fork: Delivery.Fork
    public var ringTimeout: Int
    /// Where an unanswered, busy or failed call goes instead of failing.
    public var voicemail: AppHop?
}

/// Where a call leaves Tandem.
public enum Exit: Sendable, Equatable {
    /// A carrier provider's hops, named by the dialplan (`route=trunk:ID`).
    case trunk(String, hops: [String])
    /// `routing.default_route`.
    case defaultRoute
}

public indirect enum Outcome: Sendable, Equatable {
    /// Ring the users (possibly none, straight to voicemail).
    case accept(Delivering)
    /// `302 Moved Temporarily` to the number.
    case redirect(to: String)
    /// Proxy to the transfer target, re-resolved: `then` is what the target's routing decided.
    case transfer(to: String, then: Outcome)
    case reject(status: Int, reason: String)
    /// Inbound apps first, in chain order; `then` is what follows the last one.
    case chain(hops: [AppHop], then: Outcome)
    /// Out of Tandem with the normalised number.
    case outbound(number: String, via: Exit)

    public var kind: String {
        switch self {
        case .accept(let delivering): delivering.users.isEmpty ? "voicemail" : "accept"
        case .redirect, .transfer: "transfer"
        case .reject: "reject"
        case .chain: "chain"
        case .outbound: "outbound"
        }
    }
}

/// One step of the reasoning, for `route.explain` and the logs.
public struct Step: Sendable, Equatable {
    public var stage: String
    public var detail: String
}

public struct Decision: Sendable {
    public var outcome: Outcome
    public var steps: [Step]
    /// The called number after the dialplan.
    public var normalized: String
    public var numberClass: NumberClass?
}
