import Billing
import Crypto
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport
import Synchronization

/// The proxy: takes complete messages from a transport, validates them, and answers, forwards or
/// drops them — transaction-stateful per RFC 3261 §16 and §17.
///
/// It receives its transport, timer service and logger from the executable (STYLE.md §8), so the same
/// code runs over real sockets and over the in-memory network of the trace tests.
public final class Gateway: Sendable {
    /// Settings the gateway reads per message; replaced as a whole on reload.
    public struct Settings: Sendable, Equatable {
        public var listen: [ListenPoint]
        public var domain: String?
        /// The host written in Tandem's Via and Record-Route instead of the listen address.
        public var advertise: String?
        public var maxMessageSize: Int
        public var serverHeader: String
        public var timers: TransactionTimers
        public var maxTransactions: Int
        public var defaultRoute: [SIPURI]
        public var fork: ForkMode
        public var serialTimeout: Double
        /// The digest realm challenges name (fixed at start: stored credentials are hashed with it).
        public var realm: String
        public var nonceLifetime: Int
        public var digestAlgorithms: [DigestAlgorithm]
        public var trustedSources: [AddressBlock]
        public var banPolicy: BanPolicy
        public var floodPolicy: FloodPolicy
        public var registrar: RegistrarPolicy
        /// Lowercased User-Agent fragments whose requests are dropped.
        public var blockedUserAgents: [String]
        public var dialplanDirectory: String?
        public var userDialplan: String?
        public var providerDialplan: String?
        public var peerDialplan: String?
        public var maxTransfers: Int
        public var maxCallDuration: Double
        public var presence: PresencePolicy

        public init(_ configuration: Configuration) {
            listen = configuration.listen
            domain = configuration.domain
            advertise = configuration.advertise
            maxMessageSize = configuration.maxMessageSize
            serverHeader = configuration.serverHeader
            timers = configuration.timers
            maxTransactions = configuration.maxTransactions
            defaultRoute = configuration.defaultRoute
            fork = configuration.fork
            serialTimeout = configuration.serialTimeout
            realm = configuration.effectiveRealm
            nonceLifetime = configuration.nonceLifetime
            digestAlgorithms = configuration.digestAlgorithms
            trustedSources = configuration.trustedSources
            banPolicy = configuration.banPolicy
            floodPolicy = configuration.floodPolicy
            registrar = configuration.registrar
            blockedUserAgents = configuration.blockedUserAgents
            dialplanDirectory = configuration.dialplanDirectory
            userDialplan = configuration.userDialplan
            providerDialplan = configuration.providerDialplan
            peerDialplan = configuration.peerDialplan
            maxTransfers = configuration.maxTransfers
            maxCallDuration = Double(configuration.maxCallDuration)
            presence = configuration.presence
        }
    }

    /// Methods Tandem handles itself or forwards; `Allow` of its OPTIONS answer.
    public static let allowedMethods = SIPMethod.allowed.map(\.name).joined(separator: ", ")

    public let statistics: GatewayStatistics
    let transport: any Transport
    let timers: any TimerService
    let logger: Logger
    private let settings: Mutex<Settings>
    let proxy = ProxyShards()
    let branchCounter = Atomic<UInt64>(0)
    private let timerCounter = Atomic<UInt64>(0)

    /// A fresh timer identifier (never 0).
    func newTimerID() -> TimerID {
        TimerID(timerCounter.wrappingAdd(1, ordering: .relaxed).newValue)
    }
    /// Mixed into stateless To-tags and branch values so they cannot be predicted across restarts.
    let secret: UInt64

    /// Accounts, users, numbers and providers: read from its snapshot on every request.
    public let registry: Registry
    /// Registered devices.
    public let location: Location
    /// Failed authentications and bans (`auth.bans`, `auth.unban`).
    public let authFailures: AuthFailures
    let nonces: NonceIssuer
    let nonceCounts = NonceCounts()
    /// Wall-clock milliseconds since the Unix epoch: nonce ages and binding expiry.
    let clock: @Sendable () -> Int64
    /// Trusted source blocks for the snapshot version they were built from.
    let trustCache = Mutex<TrustedSources?>(nil)
    /// The dialplans in force (`dialplan.reload`, SIGHUP).
    public let dialplans: DialplanLibrary
    /// Signs the return routes of app chains; derived from `auth.secret` so that nodes sharing it
    /// accept each other's.
    let chainKey: [UInt8]
    let returnedChains = ReturnedChains()
    /// Calls in progress (docs/cdr.md).
    let calls = Mutex(CallTracker())
    /// Presence subscriptions of Tandem's users (docs/presence.md).
    let presence: PresenceServer
    /// Where call records and call events are written.
    public let callLog: CallLog
    /// Each account's usage this month and calls in progress, checked against its plan.
    let gauges: Mutex<Gauges>
    let lastAliveMark = Atomic<Int64>(0)
    /// A maintenance sweep is running on its queue.
    let maintenanceRunning = Atomic<Bool>(false)
    let reportedCallLogFailures = Atomic<Int>(0)
    let reportedLocationFailures = Atomic<Int>(0)
    let reportedLocationRefusals = Atomic<Int>(0)

    /// - Parameters:
    ///   - nonceSecret: the key nonces are signed with (`auth.secret`); random when `nil`.
    ///   - clock: wall-clock milliseconds; tests derive it from their manual timers.
    public init(settings: Settings, transport: any Transport, timers: any TimerService, logger: Logger,
                registry: Registry, location: Location, callLog: CallLog? = nil, subscriptions: SubscriptionStore? = nil,
                dialplans: DialplanLibrary = DialplanLibrary(), nonceSecret: String? = nil,
                clock: @escaping @Sendable () -> Int64,
                statistics: GatewayStatistics = GatewayStatistics(), secret: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.settings = Mutex(settings)
        self.transport = transport
        self.timers = timers
        self.logger = logger
        self.statistics = statistics
        self.secret = secret
        self.registry = registry
        self.location = location
        self.callLog = callLog ?? CallLog(registry: registry)
        presence = PresenceServer(store: subscriptions)
        self.clock = clock
        // The gauges start from what this month's records already used.
        let month = Timestamp.day(milliseconds: clock()).prefix(7) + "-01"
        let used = (try? registry.read { s throws(RegistryError) in try s.usage(since: String(month)) }) ?? []
        gauges = Mutex(Gauges(usage: used))
        authFailures = AuthFailures(policy: settings.banPolicy)
        let key = nonceSecret.map { Array($0.utf8) } ?? secureRandomBytes(32)
        nonces = NonceIssuer(secret: key)
        chainKey = HMAC.sha256(key: key, message: Array("tandem chain return routes".utf8))
        self.dialplans = dialplans
    }

    public var currentSettings: Settings { settings.withLock { $0 } }

    /// Swaps the settings in place (SIGHUP); messages in flight finish with the settings they read.
    public func update(_ new: Settings) {
        var new = new
        // The realm is fixed at start: stored HA1s were computed with it.
        new.realm = currentSettings.realm
        settings.withLock { $0 = new }
        authFailures.update(new.banPolicy)
        trustCache.withLock { $0 = nil }
    }

    /// Server transactions, client transactions and response contexts now held.
    public var transactionCounts: (server: Int, client: Int, contexts: Int) {
        proxy.totals
    }

    /// Calls in progress.
    public var openCallCount: Int { calls.withLock { $0.count } }

    /// Calls in progress counted against an account (`gauge.get`).
    public func callsInProgress(accountID: String) -> Int { gauges.withLock { $0.inProgress(accountID: accountID) } }

    // MARK: Inbound

    /// Handles one complete message from any transport, to completion, on the calling thread.
    public func receive(_ inbound: InboundMessage) {
        let settings = self.settings.withLock { $0 }
        let snapshot = registry.snapshot
        // The trusted party the source is, read once: the flood check, admission and identity
        // hygiene all need it.
        let trusted = IPAddress(inbound.source.host).flatMap { trustedCaller($0, settings, snapshot) }
        if settings.floodPolicy.limit > 0, trusted == nil, !admitsFlood(from: inbound, settings) { return }
        if inbound.unframeable {
            statistics.unframeable.increment()
            answerUnparsed(inbound, status: 400, reason: "Missing or invalid Content-Length", counter: nil)
            return
        }
        if inbound.exceedsSizeLimit || inbound.bytes.count > settings.maxMessageSize {
            answerUnparsed(inbound, status: 513, reason: "Message Too Large", counter: statistics.oversizedAnswered,
                           dropCounter: statistics.oversizedDropped)
            return
        }
        let message: SIPMessage
        do {
            // A response is relayed as its bytes: libosip2 parses only the headers that decide where
            // it goes (HeaderSelection.relayedResponse), about half its work for a 200 with SDP.
            message = inbound.bytes.starts(with: Self.responsePrefix)
                ? try SIPMessage.parse(inbound.bytes, selecting: .relayedResponse)
                : try SIPMessage.parse(inbound.bytes)
        } catch {
            switch error.kind {
            case .truncatedBody:
                statistics.truncatedBody.increment()
                answerUnparsed(inbound, status: 400, reason: error.reason, counter: nil)
            default:
                answerUnparsed(inbound, status: 400, reason: error.reason, counter: statistics.malformedAnswered,
                               dropCounter: statistics.malformedDropped)
            }
            return
        }
        if message.isResponse {
            statistics.responsesReceived.increment()
            handleResponse(message, inbound, settings)
            return
        }
        statistics.requestsReceived.increment()
        guard message.topVia != nil else {
            // Without a Via there is nowhere to send a response (RFC 3261 §18.2.2).
            statistics.malformedDropped.increment()
            logger.debug("request without Via dropped", [("from", "\(inbound.source)")])
            return
        }
        message.stampTopVia(sourceHost: inbound.source.host, sourcePort: inbound.source.port)
        let method = message.method ?? ""
        for (header, present) in [("From", message.hasFrom), ("To", message.hasTo), ("Call-ID", message.hasCallID),
                                  ("CSeq", message.hasCSeq)] where !present {
            statistics.missingHeader.increment()
            respond(to: message, inbound, status: 400, reason: "Missing \(header) header", settings)
            return
        }
        guard let cseq = message.cseq else {
            statistics.missingHeader.increment()
            respond(to: message, inbound, status: 400, reason: "Invalid CSeq header", settings)
            return
        }
        guard cseq.method == method else {
            statistics.missingHeader.increment()
            respond(to: message, inbound, status: 400, reason: "CSeq method does not match the request", settings)
            return
        }
        let via = message.topVia!
        let requestMethod = SIPMethod(method)
        let key = ServerKey(branch: via.branch ?? "", sentBy: Self.sentBy(via), method: requestMethod == .ack ? .invite : requestMethod,
                            shard: proxy.shard(callID: message.callID))
        handleRequest(RequestContext(message: message, inbound: inbound, settings: settings, method: requestMethod, via: via, key: key,
                                     trusted: trusted, snapshot: snapshot, plan: ForwardPlan(original: inbound.bytes)))
    }

    // MARK: Addresses

    /// Whether a URI names this Tandem: its domain, or one of its listen addresses with that port.
    func isOurs(_ uri: SIPURI?, _ settings: Settings) -> Bool {
        guard let uri else { return false }
        let host = uri.host
        if let domain = settings.domain, host.caseInsensitiveEquals(domain) { return true }
        let port = uri.port ?? (uri.scheme.caseInsensitiveEquals("sips") ? 5061 : 5060)
        return isOwnAddress(host: host, port: port, settings)
    }

    /// Whether host:port is one of Tandem's listen addresses (or its advertised address on a listen port).
    func isOwnAddress(host: String, port: Int, _ settings: Settings) -> Bool {
        settings.listen.contains { point in
            guard point.address.port == port else { return false }
            let listenHost = point.address.host
            if listenHost == host { return true }
            if let advertise = settings.advertise, host.caseInsensitiveEquals(advertise) { return true }
            return (listenHost == "0.0.0.0" || listenHost == "::") && (host == "127.0.0.1" || host == "::1" || host == "localhost")
        }
    }

    /// A Request-URI without a user part that names Tandem: the request is for Tandem itself.
    func isAddressedToSelf(_ uri: SIPURI?, _ settings: Settings) -> Bool {
        guard let uri, uri.user == nil else { return false }
        return isOurs(uri, settings)
    }

    // MARK: Stateless responses

    /// Answers a request statelessly, with a To-tag derived from the request so that a retransmission
    /// gets the identical answer (as Kamailio's `sl` does).
    func respond(
        to request: SIPMessage, _ inbound: InboundMessage, status: Int, reason: String, _ settings: Settings,
        _ decorate: (SIPMessage) throws -> Void = { _ in }
    ) {
        guard let bytes = responseBytes(to: request, status: status, reason: reason, settings, decorate) else { return }
        guard let destination = Self.responseDestination(request.topVia, inbound) else {
            statistics.sendErrors.increment()
            return
        }
        send(bytes, destination, what: "response \(status)")
    }

    /// A response to `request`, serialized, with the Server header; `nil` (counted) if it cannot be built.
    func responseBytes(
        to request: SIPMessage, status: Int, reason: String, _ settings: Settings,
        _ decorate: (SIPMessage) throws -> Void = { _ in }
    ) -> [UInt8]? {
        do {
            let response = try request.makeResponse(status: status, reason: reason, toTag: statelessTag(request))
            if !settings.serverHeader.isEmpty { try response.addHeader("Server", settings.serverHeader) }
            try decorate(response)
            return try response.serialized()
        } catch {
            statistics.sendErrors.increment()
            logger.warning("cannot build response", [("status", String(status)), ("reason", "\(error)")])
            return nil
        }
    }

    /// Answers bytes libosip2 refused: the Via and dialog headers are salvaged one by one (each parsed
    /// by libosip2); without a readable Via, or for a response, the message is dropped and counted.
    private func answerUnparsed(_ inbound: InboundMessage, status: Int, reason: String,
                                counter: Counter?, dropCounter: Counter? = nil) {
        let looksLikeResponse = inbound.bytes.starts(with: Array("SIP/".utf8))
        let headers = SIPFraming.headerLines(inbound.bytes)
        guard !looksLikeResponse,
              let response = SIPMessage.salvageResponse(status: status, reason: reason, headers: headers,
                                                        toTag: tagFor(headers)) else {
            dropCounter?.increment()
            logger.debug("unanswerable message dropped", [("status", String(status)), ("reason", reason),
                                                          ("from", "\(inbound.source)"), ("bytes", String(inbound.bytes.count))])
            return
        }
        counter?.increment()
        response.stampTopVia(sourceHost: inbound.source.host, sourcePort: inbound.source.port)
        logger.debug("malformed request answered", [("status", String(status)), ("reason", reason), ("from", "\(inbound.source)")])
        guard let destination = Self.responseDestination(response.topVia, inbound),
              let bytes = try? response.serialized() else {
            statistics.sendErrors.increment()
            return
        }
        send(bytes, destination, what: "response \(status)")
    }

    /// Sends and counts; a transport failure is logged and counted, never thrown.
    @discardableResult
    func send(_ bytes: [UInt8], _ destination: Destination, what: @autoclosure () -> String) -> Bool {
        do {
            try transport.send(bytes, to: destination)
            if bytes.starts(with: Self.responsePrefix) { statistics.responsesSent.increment() }
            logger.debug("sent", [("what", what()), ("to", "\(destination.transport.rawValue):\(destination.address)")])
            return true
        } catch {
            statistics.sendErrors.increment()
            logger.warning("not sent", [("what", what()), ("to", "\(destination.address)"), ("reason", error.reason)])
            return false
        }
    }

    static let responsePrefix = Array("SIP/2.0 ".utf8)

    /// RFC 3261 §18.2.2 with RFC 3581 §4: over a stream, the connection the request came on; over UDP,
    /// the source address and port when `rport` was asked for, else `received` and the Via port.
    static func responseDestination(_ via: Via?, _ inbound: InboundMessage) -> Destination? {
        switch inbound.transport {
        case .tcp:
            return Destination(transport: .tcp, address: inbound.source, connection: inbound.connection, local: inbound.local)
        case .udp:
            guard let via else { return nil }
            return Destination(transport: .udp, address: viaAddress(via), local: inbound.local)
        }
    }

    /// Where a response goes according to a Via alone (§18.2.2, RFC 3581): received/rport first.
    static func viaAddress(_ via: Via) -> SocketAddress {
        let host = via.received ?? via.host
        let port: Int
        if let rport = via.rport, let value = rport.flatMap({ Int($0) }) {
            port = value
        } else {
            port = via.port ?? 5060
        }
        return SocketAddress(host: host, port: port)
    }

    func statelessTag(_ request: SIPMessage) -> String {
        tag([request.callID ?? "", request.fromTag ?? "", request.topViaBranch ?? ""])
    }

    private func tagFor(_ headers: [(name: String, value: String)]) -> String {
        tag(headers.filter { ["call-id", "via", "from"].contains(HeaderName.canonical($0.name)) }.map(\.value))
    }

    /// FNV-1a over the parts and a per-process secret: a stable, non-cryptographic identifier.
    func tag(_ parts: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ secret
        for part in parts {
            for byte in part.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            hash ^= 0xff
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 36)
    }
}
