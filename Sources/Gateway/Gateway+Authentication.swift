import Crypto
import JSON
import Registrar
import Registry
import SIP
import SIPTransport

/// Who sent an out-of-dialog request, once Tandem has decided to believe it.
enum Caller {
    /// From one of a provider's trusted source addresses: not challenged, marked as that provider's.
    case provider(String)
    /// From `auth.trusted_sources`: not challenged; Tandem is a plain proxy for it.
    case trustedPeer
    /// A user who proved their password (RFC 3261 §22).
    case user(Record<User>, Record<Account>)

    var isTrusted: Bool {
        if case .user = self { return false }
        return true
    }
}

/// The trusted source blocks of one registry snapshot version plus the configured ones.
struct TrustedSources: Sendable {
    var version: UInt64
    var providers: [(block: AddressBlock, providerID: String)]
    var peers: [AddressBlock]

    init(snapshot: RegistrySnapshot, peers: [AddressBlock]) {
        version = snapshot.version
        self.peers = peers
        providers = snapshot.allProviders.flatMap { provider in
            provider.trustedSources.compactMap { text in AddressBlock(text).map { ($0, provider.id) } }
        }
    }

    func caller(_ address: IPAddress) -> Caller? {
        if let match = providers.first(where: { $0.block.contains(address) }) { return .provider(match.providerID) }
        if peers.contains(where: { $0.contains(address) }) { return .trustedPeer }
        return nil
    }
}

extension Gateway {
    /// The trusted caller a source address is, if any; the blocks are rebuilt when the registry changes.
    func trustedCaller(_ address: IPAddress, _ settings: Settings, _ snapshot: RegistrySnapshot) -> Caller? {
        let sources = trustCache.withLock { cache -> TrustedSources in
            if let cache, cache.version == snapshot.version { return cache }
            let fresh = TrustedSources(snapshot: snapshot, peers: settings.trustedSources)
            cache = fresh
            return fresh
        }
        return sources.caller(address)
    }

    /// Flood protection (`security.flood_limit`), before anything is parsed: a message from an
    /// untrusted source past its limit is dropped unanswered, and the ban it starts is logged and
    /// recorded as `security.flood`.
    func admitsFlood(from inbound: InboundMessage, _ settings: Settings) -> Bool {
        let source = inbound.source.host
        let now = clock()
        switch authFailures.checkFlood(source: source, now: now, policy: settings.floodPolicy) {
        case .pass:
            return true
        case .drop:
            statistics.floodDropped.increment()
            return false
        case .banned(let ban):
            statistics.floodBans.increment()
            statistics.floodDropped.increment()
            logger.warning("source flooding, banned", [("source", ban.source), ("reason", ban.reason),
                                                      ("seconds", String((ban.until - ban.since) / 1000))])
            do {
                try registry.recordEvent("security.flood", subject: ban.source, payload: [
                    "source": .string(ban.source), "reason": .string(ban.reason), "messages": .integer(Int64(ban.failures)),
                    "until": .string(Timestamp.rfc3339(milliseconds: ban.until)),
                ], source: "security")
            } catch {
                logger.warning("cannot record the flood event", [("reason", "\(error)")])
            }
            return false
        }
    }

    /// A request from a scanner (`security.blocked_user_agents`): dropped without an answer, so the
    /// scanner learns nothing, not even that something listens.
    func isBlocked(_ request: SIPMessage, _ settings: Settings) -> Bool {
        guard !settings.blockedUserAgents.isEmpty, let agent = request.header("User-Agent") else { return false }
        // A byte search over the ASCII-lowered header: Foundation's `contains` searched each fragment
        // as Unicode text, on every request (most of a REGISTER's string handling).
        var lowered = Array(agent.utf8)
        for index in lowered.indices where lowered[index] >= 65 && lowered[index] <= 90 { lowered[index] |= 0x20 }
        return settings.blockedUserAgents.contains { fragment in
            let needle = fragment.utf8
            guard let first = needle.first, needle.count <= lowered.count else { return false }
            for start in 0...(lowered.count - needle.count) where lowered[start] == first {
                if lowered[start..<(start + needle.count)].elementsEqual(needle) { return true }
            }
            return false
        }
    }

    /// RFC 3261 §22 digest authentication of a REGISTER (`registrar`: 401, `Authorization`) or of
    /// another request (407, `Proxy-Authorization`). Returns the user and their account, or `nil`
    /// after answering (challenge, 400 or 403).
    func authenticate(_ context: RequestContext, registrar: Bool) -> (Record<User>, Record<Account>)? {
        let (request, inbound, settings, snapshot) = (context.message, context.inbound, context.settings, context.snapshot)
        let now = clock()
        let source = inbound.source.host
        if authFailures.ban(of: source, now: now) != nil {
            statistics.bannedRefused.increment()
            respond(to: request, inbound, status: 403, reason: "Forbidden (too many failed authentications)", settings)
            return nil
        }
        let method = context.method.name
        let offered = request.credentials(proxy: !registrar).filter {
            $0.scheme.caseInsensitiveEquals("Digest") && $0.realm == settings.realm
        }
        // Credentials for another realm are someone else's (a downstream proxy's): not a failure.
        guard let credentials = offered.first(where: { DigestVerifier.algorithm(of: $0) == .sha256 }) ?? offered.first else {
            challenge(request, inbound, registrar: registrar, stale: false, settings)
            return nil
        }
        guard let username = credentials.username, !username.isEmpty else {
            respond(to: request, inbound, status: 400, reason: "Malformed credentials: username is missing", settings)
            return nil
        }
        guard let user = snapshot.user(sipUsername: username), let stored = user.credentials, stored.realm == settings.realm else {
            failed(request, inbound, registrar: registrar, username: username, why: "unknown user or no password", settings)
            return nil
        }
        guard let algorithm = DigestVerifier.algorithm(of: credentials), settings.digestAlgorithms.contains(algorithm) else {
            challenge(request, inbound, registrar: registrar, stale: false, settings)
            return nil
        }
        let ha1 = algorithm == .sha256 ? stored.ha1SHA256 : stored.ha1MD5
        switch DigestVerifier.verify(credentials, method: method, ha1: ha1) {
        case .valid:
            break
        case .malformed(let field):
            respond(to: request, inbound, status: 400, reason: "Malformed credentials: \(field)", settings)
            return nil
        case .unsupportedAlgorithm:
            challenge(request, inbound, registrar: registrar, stale: false, settings)
            return nil
        case .wrongResponse:
            failed(request, inbound, registrar: registrar, username: username, why: "wrong password", settings)
            return nil
        }
        // RFC 2617 §3.2.2.5, RFC 7616 §3.4.6: a response computed for another Request-URI proves
        // nothing about this request (a captured REGISTER's credentials replayed for an INVITE, a
        // call's redirected to another target).
        guard credentials.uri == request.requestURIText
                || credentials.uri.flatMap({ SIPURI(parsing: $0) }).map({ uri in request.requestURI.map(uri.isEquivalent) ?? false }) == true else {
            statistics.digestURIMismatch.increment()
            respond(to: request, inbound, status: 400, reason: "Malformed credentials: uri is not the Request-URI", settings)
            return nil
        }
        // The password is right; now the nonce must be ours, fresh, and its count new (RFC 7616 §3.3,
        // §3.4.5). Otherwise the device is asked again with stale=true and retries on its own.
        let nonce = credentials.nonce ?? ""
        switch nonces.check(nonce, now: now, realm: settings.realm, lifetime: settings.nonceLifetime) {
        case .valid(let issuedAt):
            let count = UInt32(credentials.nonceCount ?? "", radix: 16) ?? 0
            switch nonceCounts.accept(nonce: nonce, issuedAt: issuedAt, nc: count) {
            case .accepted:
                break
            case .replayed, .unknown:
                statistics.replayedNonces.increment()
                logger.notice("replayed nonce count refused", [("user", username), ("from", "\(inbound.source)"),
                                                                ("nc", credentials.nonceCount ?? "")])
                challenge(request, inbound, registrar: registrar, stale: true, settings)
                return nil
            }
        case .stale, .invalid:
            statistics.staleNonces.increment()
            challenge(request, inbound, registrar: registrar, stale: true, settings)
            return nil
        }
        guard let account = snapshot.account(user.accountID) else {
            failed(request, inbound, registrar: registrar, username: username, why: "user without account", settings)
            return nil
        }
        // A suspended account's calls are refused by routing, which lets emergency calls through.
        if account.status == .suspended && registrar {
            statistics.suspendedRefused.increment()
            respond(to: request, inbound, status: 403, reason: "Account suspended", settings)
            return nil
        }
        if user.status != .active {
            statistics.forbiddenRefused.increment()
            respond(to: request, inbound, status: 403, reason: "User disabled", settings)
            return nil
        }
        statistics.authSucceeded.increment()
        return (user, account)
    }

    /// 401 with WWW-Authenticate or 407 with Proxy-Authenticate: SHA-256 and MD5, one fresh nonce.
    func challenge(_ request: SIPMessage, _ inbound: InboundMessage, registrar: Bool, stale: Bool, _ settings: Settings) {
        statistics.challengesSent.increment()
        let nonce = nonces.issue(now: clock(), realm: settings.realm)
        let header = registrar ? "WWW-Authenticate" : "Proxy-Authenticate"
        respond(to: request, inbound, status: registrar ? 401 : 407,
                reason: registrar ? "Unauthorized" : "Proxy Authentication Required", settings) { response in
            for offer in DigestChallenge.offer(settings.digestAlgorithms, realm: settings.realm, nonce: nonce, stale: stale) {
                try response.addHeader(header, offer.headerValue)
            }
        }
    }

    /// A failed authentication: counted; past the limit the source is banned and refused, otherwise
    /// challenged again.
    private func failed(_ request: SIPMessage, _ inbound: InboundMessage, registrar: Bool, username: String, why: String,
                        _ settings: Settings) {
        statistics.authFailures.increment()
        let now = clock()
        logger.notice("authentication failed", [("user", username), ("from", "\(inbound.source)"), ("reason", why),
                                                ("method", request.method ?? "")])
        if let ban = authFailures.recordFailure(source: inbound.source.host, username: username, now: now) {
            statistics.bansStarted.increment()
            logger.warning("source banned", [("source", ban.source), ("reason", ban.reason), ("seconds", String((ban.until - ban.since) / 1000))])
            do {
                try registry.recordEvent("auth.banned", subject: ban.source, payload: [
                    "source": .string(ban.source), "reason": .string(ban.reason), "failures": .integer(Int64(ban.failures)),
                    "username": ban.username.map { .string($0) } ?? .null,
                    "until": .string(Timestamp.rfc3339(milliseconds: ban.until)),
                ], source: "auth")
            } catch {
                logger.warning("cannot record the ban event", [("reason", "\(error)")])
            }
            statistics.bannedRefused.increment()
            respond(to: request, inbound, status: 403, reason: "Forbidden (too many failed authentications)", settings)
            return
        }
        challenge(request, inbound, registrar: registrar, stale: false, settings)
    }

    // MARK: Identity (RFC 3325)

    /// The number an authenticated user's request is asserted as: the From user part when it is a
    /// number they may present, their first number when From names their username. `nil` after a
    /// 403 "Caller ID not allowed".
    func assertedIdentity(_ request: SIPMessage, _ inbound: InboundMessage, user: User, _ settings: Settings,
                          _ snapshot: RegistrySnapshot) -> String?? {
        let fromUser = request.from?.uri?.user
        if fromUser == nil || fromUser == user.sipUsername {
            return .some(snapshot.presentableNumbers(of: user).first)
        }
        if let number = Self.e164(fromUser!), snapshot.mayPresent(number, as: user) {
            return .some(number)
        }
        statistics.callerIDRefused.increment()
        logger.notice("caller ID refused", [("user", user.sipUsername), ("from_user", fromUser ?? ""), ("from", "\(inbound.source)")])
        respond(to: request, inbound, status: 403, reason: "Caller ID not allowed", settings)
        return nil
    }

    /// `+` and digits, or digits alone (read as `+` and the digits): the forms a caller ID takes
    /// before dialplans exist.
    static func e164(_ text: String) -> String? {
        let digits = text.hasPrefix("+") ? text.dropFirst() : Substring(text)
        guard (2...15).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return "+" + digits
    }

    /// The P-Asserted-Identity value for a user: their number when they have one, else their username.
    func identityValue(number: String?, user: User, local: ListenPoint, _ settings: Settings) -> String {
        let host = settings.domain ?? advertised(local, settings).description
        if let number { return "<\(numberURI(number, host: host, port: nil))>" }
        return "<sip:\(user.sipUsername)@\(host)>"
    }
}
