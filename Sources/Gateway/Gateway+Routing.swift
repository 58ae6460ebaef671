import Crypto
import Registry
import Routing
import SIP
import SIPTransport
import Synchronization

/// Carrying out the routing decision (docs/routing.md): `Routing.Router` decides, the gateway turns
/// the outcome into answers and forwarding stages.
extension Gateway {
    /// Which dialplan applies to which origin, from the settings.
    public func routingPolicy(_ settings: Settings) -> RoutingPolicy {
        RoutingPolicy(userDialplan: settings.userDialplan, providerDialplan: settings.providerDialplan,
                      peerDialplan: settings.peerDialplan, hasDefaultRoute: !settings.defaultRoute.isEmpty,
                      maxTransfers: settings.maxTransfers)
    }

    /// The facts of an initial request, the decision, and what it leads to.
    func route(_ context: RequestContext, caller: Caller?, chain: ChainReturn?) {
        let (request, inbound, settings, snapshot) = (context.message, context.inbound, context.settings, context.snapshot)
        let origin: Origin
        switch (caller, chain) {
        case (_, let chain?): origin = .chainReturn(provider: chain.providerID, step: chain.step)
        case (.user(let user, _)?, nil): origin = .user(user.id)
        case (.provider(let id)?, nil): origin = .provider(id)
        case (.trustedPeer?, nil), (nil, nil): origin = .peer
        }
        let callerNumber = request.header("P-Asserted-Identity").flatMap { NameAddress(parsing: $0)?.uri?.user }
            ?? request.from?.uri?.user
        let facts = CallFacts(origin: origin, callerNumber: callerNumber.flatMap(Self.e164), dialled: request.requestURI?.user ?? "",
                              priority: request.header("Priority")?.trimmingCharacters(in: .whitespaces).lowercased())
        let now = clock()
        let explain = logger.isEnabled(.debug)
        let decision = Router.decide(facts, dialplans: dialplans.current, directory: RegistryDirectory(snapshot: snapshot, location: location, now: now),
                                     policy: routingPolicy(settings), now: now, explain: explain)
        if explain {
            logger.debug("routing decision", [("call_id", request.callID ?? ""), ("outcome", decision.outcome.kind)]
                         + decision.steps.map { ($0.stage, $0.detail) })
        }
        let isInvite = context.method == .invite
        let opening = openingCall(context, facts: facts, decision: decision, caller: caller)
        var context = context
        var edits = BranchEdits()
        if decision.normalized != facts.dialled, let uri = request.requestURI {
            edits.requestURI = numberURI(decision.normalized, host: uri.host, port: uri.port)
        }
        // RFC 5502 §6: P-Served-User is meant for the app it was sent to; Tandem writes each hop's own.
        if chain != nil { edits.removing.append("P-Served-User") }
        // Outcome counters count calls, once, by their first decision; legs an app hands back along
        // a chain count in `chain_returns`.
        let counting = chain == nil
        var outcome = decision.outcome
        var diverting = decision.normalized
        while true {
            switch outcome {
            case .reject(let status, let reason):
                if counting { statistics.routeRejected.increment() }
                // The record is queued before the answer leaves: whoever saw the answer finds the
                // record (cdr.list flushes what is queued).
                callRefused(opening, status: status, reason: reason)
                respond(to: request, inbound, status: status, reason: reason, settings)
                return
            case .redirect(let target):
                if counting { statistics.routeRedirected.increment() }
                let contact = numberURI(target, host: settings.domain ?? advertised(inbound.local, settings).description, port: nil)
                callRefused(opening, status: 302, reason: "Moved Temporarily")
                respond(to: request, inbound, status: 302, reason: "Moved Temporarily", settings) { response in
                    try response.addHeader("Contact", "<\(contact)>")
                }
                return
            case .transfer(let target, let then):
                // Counted once per call, and only when the transfer leads somewhere (not into a loop).
                if counting, diverting == decision.normalized, then.isCarriedOut { statistics.routeTransferred.increment() }
                // RFC 5806 §4: each diversion adds its number on top, so the latest comes first, above
                // any diversions that happened before the call reached Tandem.
                let host = settings.domain ?? advertised(inbound.local, settings).description
                if edits.headers.isEmpty {
                    edits.headers = request.headerValues("Diversion").map { HeaderLine("Diversion", $0) }
                }
                edits.headers.insert(HeaderLine("Diversion", "<\(numberURI(diverting, host: host, port: nil))>;reason=unconditional"), at: 0)
                edits.requestURI = numberURI(target, host: request.requestURI?.host ?? host, port: request.requestURI?.port)
                diverting = target
                outcome = then
                continue
            case .chain(let hops, let then):
                guard isInvite else {
                    outcome = then
                    continue
                }
                if counting { statistics.routeChained.increment() }
                let stages = chainStages(hops, then: then, number: decision.normalized, request: request, inbound: inbound, edits: edits, settings)
                guard !stages.isEmpty else {
                    callRefused(opening, status: 500, reason: "App hop unusable", disposition: .failed)
                    respond(to: request, inbound, status: 500, reason: "App hop unusable", settings)
                    return
                }
                context.plan.rewritten = true
                forwardCall(context, stages: stages, recordRoute: true, opening: opening, emergency: decision.numberClass == .emergency)
                return
            case .accept, .outbound:
                let stages = deliveryStages(outcome, number: decision.normalized, isInvite: isInvite, request: request, inbound: inbound,
                                            edits: edits, counting: counting, settings)
                guard !stages.isEmpty, !stages[0].targets.isEmpty else {
                    statistics.unavailableUser.increment()
                    callRefused(opening, status: 480, reason: "Temporarily Unavailable")
                    respond(to: request, inbound, status: 480, reason: "Temporarily Unavailable", settings)
                    return
                }
                if edits.requestURI != nil || !edits.headers.isEmpty || !edits.removing.isEmpty { context.plan.rewritten = true }
                forwardCall(context, stages: stages, recordRoute: context.method.createsDialog, opening: opening,
                            emergency: decision.numberClass == .emergency)
                return
            }
        }
    }

    /// Forwards a routed request; an INVITE opens its call first (its answer may come back before
    /// `forward` returns), and a call Tandem cannot record is refused.
    private func forwardCall(_ context: RequestContext, stages: [Stage], recordRoute: Bool, opening: OpenCall?, emergency: Bool) {
        var leg: CallLeg?
        if let opening {
            switch openCall(opening, emergency: emergency, context.snapshot) {
            case .opened(let opened):
                leg = opened
            case .backlog:
                respond(to: context, status: 503, reason: "Call records backlog") { response in
                    try response.addHeader("Retry-After", "5")
                }
                return
            case .planLimit:
                callRefused(opening, status: 403, reason: "Plan limit reached")
                respond(to: context, status: 403, reason: "Plan limit reached")
                return
            }
        }
        if !forward(context, stages: stages, recordRoute: recordRoute, call: leg), let leg {
            callNotForwarded(leg)
        }
    }

    /// Edits every branch of a routed request shares.
    struct BranchEdits {
        var requestURI: String?
        var headers: [HeaderLine] = []
        var removing: [String] = []
    }

    /// `sip:+33612345678@host;user=phone` (RFC 3966 numbers in SIP URIs), or `sip:name@host`.
    func numberURI(_ number: String, host: String, port: Int?) -> String {
        let hostPart = host.contains(":") && !host.hasPrefix("[") && port != nil ? "[\(host)]" : host
        let address = port.map { "\(hostPart):\($0)" } ?? hostPart
        return number.hasPrefix("+") ? "sip:\(number)@\(address);user=phone" : "sip:\(number)@\(address)"
    }

    /// The stages of an accepted call or a call leaving Tandem.
    func deliveryStages(_ outcome: Outcome, number: String, isInvite: Bool, request: SIPMessage, inbound: InboundMessage,
                        edits: BranchEdits, counting: Bool, _ settings: Settings) -> [Stage] {
        switch outcome {
        case .accept(let delivering):
            let now = clock()
            var bindings = delivering.users.flatMap { location.bindings(userID: $0) }.filter { $0.expiresAt > now }
            // Serial forking tries devices by preference (RFC 3261 §16.6: q-value order).
            if delivering.fork == .serial { bindings.sort { $0.q > $1.q } }
            let targets: [ForwardTarget] = bindings.compactMap { binding in
                guard var target = forwardTarget(binding) else { return nil }
                target.headers = edits.headers
                target.removing = edits.removing
                target.party = .user(binding.userID)
                return target
            }
            let ring = isInvite ? Double(delivering.ringTimeout) : nil
            var stages: [Stage]
            if counting, !delivering.users.isEmpty { statistics.toRegisteredUser.increment() }
            switch delivering.fork {
            case .parallel:
                stages = targets.isEmpty ? [] : [Stage(targets: targets, timeout: ring, advance: .unanswered, timeoutStatus: 480)]
            case .serial:
                stages = targets.map { Stage(targets: [$0], timeout: ring, advance: .unanswered, timeoutStatus: 480) }
            }
            if isInvite, let voicemail = delivering.voicemail, var target = appTarget(voicemail, number: number, returnRoute: nil, edits: edits,
                                                                                      inbound: inbound, settings) {
                target.party = .voicemail(voicemail.appID)
                stages.append(Stage(targets: [target], advance: .failed))
                if counting { (stages.count == 1 ? statistics.routeVoicemail : statistics.routeAccepted).increment() }
            } else if counting, !stages.isEmpty {
                statistics.routeAccepted.increment()
            }
            return stages
        case .outbound(let number, let exit):
            if counting { statistics.routeOutbound.increment() }
            switch exit {
            case .defaultRoute:
                let rewrite = edits.requestURI
                let targets = settings.defaultRoute.map { ForwardTarget(nextHop: $0, requestURI: rewrite, headers: edits.headers, removing: edits.removing) }
                switch settings.fork {
                case .parallel:
                    return [Stage(targets: targets)]
                case .serial:
                    return targets.enumerated().map { index, target in
                        Stage(targets: [target], timeout: index < targets.count - 1 ? settings.serialTimeout : nil)
                    }
                }
            case .trunk(_, let hops):
                // A trunk's hops are alternatives: the next is tried only when one fails (408, 5xx).
                return hops.compactMap { SIPURI(parsing: $0) }.map { hop in
                    Stage(targets: [ForwardTarget(nextHop: hop, requestURI: numberURI(number, host: hop.host, port: hop.port),
                                                  headers: edits.headers, removing: edits.removing)], advance: .failed)
                }
            }
        default:
            return []
        }
    }

    /// The chain: each app in turn, with a signed Route back to Tandem; an app whose `on_failure` is
    /// `skip` lets the next hop start when it fails, and after the last one the callee's stages.
    func chainStages(_ hops: [AppHop], then: Outcome, number: String, request: SIPMessage, inbound: InboundMessage,
                     edits: BranchEdits, _ settings: Settings) -> [Stage] {
        var stages: [Stage] = []
        for hop in hops {
            let token = chainToken(number: number, providerID: hop.providerID, step: hop.step,
                                   expires: clock() / 1000 + Int64(ChainToken.lifetime), nonce: Hex.encode(secureRandomBytes(4)))
            let returnRoute = chainRoute(token, inbound.local, settings)
            guard var target = appTarget(hop, number: number, returnRoute: returnRoute, edits: edits, inbound: inbound, settings) else {
                if hop.onFailure == .fail { return stages }
                continue
            }
            target.party = .app(hop.appID)
            var stage = Stage(targets: [target], advance: .failed)
            stage.chainToken = token
            stages.append(stage)
            if hop.onFailure == .fail { return stages }
        }
        // The callee's stages are a fallback here; the call counts as chained, not accepted.
        return stages + deliveryStages(then, number: number, isInvite: true, request: request, inbound: inbound, edits: edits,
                                       counting: false, settings)
    }

    /// A branch to an app: the number as Request-URI, the subscriber as this provider knows them in
    /// P-Served-User (RFC 5502), and the Route back to Tandem for chain steps.
    func appTarget(_ hop: AppHop, number: String, returnRoute: String?, edits: BranchEdits, inbound: InboundMessage,
                   _ settings: Settings) -> ForwardTarget? {
        guard let uri = SIPURI(parsing: hop.uri) else {
            logger.warning("app hop is not a SIP URI", [("app", hop.appID), ("uri", hop.uri)])
            return nil
        }
        let domain = settings.domain ?? advertised(inbound.local, settings).description
        let served: String
        if hop.subscriberID.contains("@") {
            served = "sip:\(hop.subscriberID)"
        } else {
            served = numberURI(hop.subscriberID, host: domain, port: nil)
        }
        var headers = edits.headers
        headers.append(HeaderLine("P-Served-User", "<\(served)>;sescase=term;regstate=reg"))
        return ForwardTarget(nextHop: uri, requestURI: numberURI(number, host: domain, port: nil),
                             routes: returnRoute.map { [$0] } ?? [], headers: headers, removing: edits.removing)
    }

    // MARK: The signed return route

    func chainRoute(_ token: String, _ local: ListenPoint, _ settings: Settings) -> String {
        let address = advertised(local, settings)
        let transport = local.transport == .udp ? "" : ";transport=\(local.transport.rawValue)"
        return "<sip:\(address)\(transport);lr;\(ChainToken.parameter)=\(token)>"
    }

    /// `STEP.EXPIRES.NONCE.MAC`: the chain position, when the token stops being accepted (seconds
    /// since the epoch), a nonce that makes each leg's token unique, and an HMAC-SHA256 over them, the
    /// number and the provider — so only Tandem can mint one, and only for that number, step and
    /// provider. The Call-ID is left out: an app may be a back-to-back user agent that changes it.
    func chainToken(number: String, providerID: String, step: Int, expires: Int64, nonce: String) -> String {
        let message = "\(number)|\(providerID)|\(step)|\(expires)|\(nonce)"
        let mac = HMAC.sha256(key: chainKey, message: Array(message.utf8))
        return "\(step).\(expires).\(nonce).\(Hex.encode(Array(mac.prefix(12))))"
    }

    /// The chain step a returning request continues after, when its token is genuine, unexpired,
    /// for this number, and the request comes from that provider's trusted sources.
    func verifyChainReturn(_ token: String, number: String, caller: Caller?, now: Int64) -> ChainReturn? {
        guard case .provider(let providerID)? = caller else { return nil }
        let parts = token.split(separator: ".")
        guard parts.count == 4, let step = Int(parts[0]), let expires = Int64(parts[1]), expires >= now / 1000 else { return nil }
        let expected = chainToken(number: number, providerID: providerID, step: step, expires: expires, nonce: String(parts[2]))
        guard constantTimeEquals(Array(expected.utf8), Array(token.utf8)) else { return nil }
        returnedChains.insert(token)
        return ChainReturn(providerID: providerID, step: step)
    }
}

extension Outcome {
    /// Whether the call goes anywhere: a transfer ending in a rejection (a loop, an unreachable
    /// target) does not.
    var isCarriedOut: Bool {
        switch self {
        case .reject: false
        case .transfer(_, let then): then.isCarriedOut
        default: true
        }
    }
}

/// A request an app handed back to Tandem along the chain's Route.
struct ChainReturn {
    var providerID: String
    var step: Int
}

enum ChainToken {
    static let parameter = "tchain"
    /// Seconds an app may hold a call (screening, announcements) before handing it back.
    static let lifetime = 3_600
}

/// Tokens of chain legs an app has handed back. Once an app has passed the call on, a failure that
/// reaches Tandem through it is the callee's answer relayed, not the app failing: it must not start
/// the `skip` path (which would offer the call a second time). Bounded: the oldest are forgotten.
final class ReturnedChains: Sendable {
    private let state = Mutex<(set: Set<String>, order: [String], head: Int)>((set: [], order: [], head: 0))
    static let capacity = 65_536

    func insert(_ token: String) {
        state.withLock { state in
            guard state.set.insert(token).inserted else { return }
            if state.order.count < Self.capacity {
                state.order.append(token)
            } else {
                state.set.remove(state.order[state.head])
                state.order[state.head] = token
                state.head = (state.head + 1) % Self.capacity
            }
        }
    }

    func contains(_ token: String) -> Bool { state.withLock { $0.set.contains(token) } }
}

extension Gateway {
    /// Re-reads `routing.dialplans` (SIGHUP, `dialplan.reload`): the plans now in force, or why the
    /// previous ones stay.
    @discardableResult
    public func reloadDialplans() -> Result<DialplanSet, DialplanReloadError> {
        guard let directory = currentSettings.dialplanDirectory else {
            return .failure(.invalid(DialplanProblems(errors: [DialplanError(file: "routing.dialplans", line: 0, reason: "no dialplan folder is configured")])))
        }
        let result = dialplans.reload(directory: directory, now: clock())
        switch result {
        case .success(let plans):
            statistics.dialplanReloads.increment()
            logger.info("dialplans reloaded", [("folder", directory), ("dialplans", plans.names.joined(separator: ",")), ("rules", String(plans.ruleCount))])
        case .failure(let error):
            statistics.dialplanReloadsRejected.increment()
            logger.error("dialplan reload refused", [("folder", directory), ("reason", error.description)])
        }
        return result
    }
}
