import Registry
import SIP
import SIPTransaction
import SIPTransport

/// Requests: RFC 3261 §16.3 validation, §16.4 Route processing, §16.5 targets, §16.6 forwarding.
extension Gateway {
    /// How a retransmitted request is absorbed: by its server transaction, or from the registrar's answers.
    private enum Retransmission {
        case transaction([ProxyEffect])
        case answered(AnsweredRequests.Answer)
    }

    func handleRequest(_ context: RequestContext) {
        var context = context
        let (request, inbound, settings, method, key) = (context.message, context.inbound, context.settings, context.method, context.key)
        switch method {
        case .ack:
            handleAck(context)
            return
        case .cancel:
            handleCancel(context)
            return
        default:
            break
        }
        // A retransmission is absorbed by its server transaction, which re-sends its last response.
        if context.via.hasRFC3261Branch {
            // Only the registrar keeps answers: other requests neither read the clock nor look them up.
            let isRegister = method == .register
            let now = isRegister ? timers.now() : 0, timerJ = settings.timers.sixtyFourT1
            let absorbed = proxy.withLock(key.shard) { state -> Retransmission? in
                if var record = state.servers[key] {
                    let actions = record.tx.receiveRetransmission()
                    state.servers[key] = record
                    return .transaction(serverEffects(actions, key, record.upstream, &state))
                }
                guard isRegister else { return nil }
                return state.answered.answer(to: key, now: now, timerJ: timerJ).map { .answered($0) }
            }
            switch absorbed {
            case .transaction(let effects)?:
                statistics.retransmissionsAbsorbed.increment()
                perform(effects, settings)
                return
            case .answered(let answer)?:
                statistics.retransmissionsAbsorbed.increment()
                send(answer.bytes, answer.destination, what: "retransmitted response")
                return
            case nil:
                break
            }
        }

        // Scanners open with out-of-dialog requests; looking for their User-Agent there keeps the
        // header scan off in-dialog traffic and retransmissions.
        if request.toTag == nil, isBlocked(request, settings) {
            statistics.blockedUserAgents.increment()
            logger.debug("request from a blocked user agent dropped", [("from", "\(inbound.source)")])
            return
        }

        // §16.3 request validation.
        let maxForwards = request.maxForwards
        let toSelfBeforeRoutes = request.routeCount == 0 && isAddressedToSelf(request.requestURI, settings)
        if method == .options && (toSelfBeforeRoutes || maxForwards == 0) {
            // §11.2 and §16.3 step 3: answer OPTIONS addressed to Tandem or out of hops.
            statistics.optionsAnswered.increment()
            respond(to: request, inbound, status: 200, reason: "OK", settings) { response in
                try response.addHeader("Allow", Self.allowedMethods)
                try response.addHeader("Accept", "application/sdp")
                try response.addHeader("Supported", "")
            }
            return
        }
        let required = request.headerValues("Proxy-Require").joined(separator: ", ")
        if !required.isEmpty {  // also part of the loop hash below
            // §16.3 step 5: Tandem supports no option tags that proxies must understand.
            statistics.badExtension.increment()
            respond(to: request, inbound, status: 420, reason: "Bad Extension", settings) { response in
                try response.addHeader("Unsupported", required)
            }
            return
        }
        // A request an app hands back along a chain's signed Route comes back unchanged by design:
        // it is recognised by its token below, not taken for a loop.
        let chainParameter = request.toTag != nil ? nil : request.firstRouteURI.flatMap { top in
            isOurs(top, settings) ? top.parameters.first { $0.name == ChainToken.parameter }?.value : nil
        }
        let loopHash = self.loopHash(request, proxyRequire: required)
        if chainParameter == nil, isLooping(request, loopHash, settings) {
            statistics.loopsDetected.increment()
            respond(to: request, inbound, status: 482, reason: "Loop Detected", settings)
            return
        }

        // §16.4 Route processing: undo a strict-routing previous hop, then pop every Route naming us.
        if isOurs(request.requestURI, settings), request.requestURI?.user == nil, request.routeCount > 0,
           let last = request.popLastRoute(), let uri = last.uri {
            try? request.setRequestURI(uri.description)
            context.plan.rewritten = true
        }
        while let top = request.firstRouteURI, isOurs(top, settings) {
            request.popRoute()
            context.plan.poppedRoutes += 1
        }

        if method == .subscribe, handleSubscribe(context) { return }
        let isInitial = context.isInitial
        let snapshot = context.snapshot
        let forRegistrar = method == .register && request.routeCount == 0
            && (isOurs(request.requestURI, settings) || request.requestURI?.host.caseInsensitiveEquals(settings.realm) == true)
        if forRegistrar {
            handleRegister(context)
            return
        }
        if request.routeCount == 0 && isAddressedToSelf(request.requestURI, settings) {
            answerLocally(request, inbound, settings)
            return
        }
        if maxForwards == 0 {
            statistics.tooManyHops.increment()
            respond(to: request, inbound, status: 483, reason: "Too Many Hops", settings)
            return
        }
        // Out of dialog, the caller must be trusted or prove who they are (RFC 3261 §22.3); in-dialog
        // requests follow the route set the authenticated initial request established.
        var caller: Caller?
        var chain: ChainReturn?
        if isInitial, let token = chainParameter {
            let trusted = context.trusted
            let number = request.requestURI?.user ?? ""
            guard let verified = verifyChainReturn(token, number: number, caller: trusted, now: clock()) else {
                statistics.chainForged.increment()
                logger.notice("chain return route refused", [("from", "\(inbound.source)"), ("number", number)])
                respond(to: request, inbound, status: 403, reason: "Invalid chain return route", settings)
                return
            }
            statistics.chainReturns.increment()
            caller = trusted
            chain = verified
        } else if isInitial {
            if let trusted = context.trusted {
                statistics.trustedRequests.increment()
                caller = trusted
            } else if method == .register {
                statistics.forbiddenRefused.increment()
                respond(to: request, inbound, status: 403, reason: "Registration for another domain", settings)
                return
            } else {
                guard let (user, account) = authenticate(context, registrar: false),
                      let number = assertedIdentity(request, inbound, user: user.value, settings, snapshot) else { return }
                caller = .user(user, account)
                assert(identity: identityValue(number: number, user: user.value, local: inbound.local, settings), on: request,
                       settings)
                context.plan.rewritten = true
            }
        }
        if !isInitial, context.trusted == nil, removeUntrustedIdentity(from: request, settings) {
            context.plan.rewritten = true
        }
        let target: ForwardTarget
        if let next = request.firstRouteURI {
            target = ForwardTarget(nextHop: next)
        } else if !isInitial {
            // In-dialog without a Route set: the remote target is the Request-URI itself (§12.2.1.1).
            guard let uri = request.requestURI else { return }
            target = ForwardTarget(nextHop: uri)
        } else {
            // A new request for a number or user: the routing decision (docs/routing.md).
            route(context, caller: caller, chain: chain)
            return
        }
        // A BYE through Tandem ends the call it belongs to (docs/cdr.md).
        if method == .bye { callEnded(by: request) }
        forward(context, stages: [Stage(targets: [target])], recordRoute: isInitial && method.createsDialog)
    }

    /// RFC 3325 §5 and RFC 3261 §22.3 for a request from an authenticated user: identity headers the
    /// user wrote are removed (only Tandem asserts identity), the credentials Tandem consumed are
    /// removed, and Tandem's own P-Asserted-Identity is added.
    private func assert(identity: String, on request: SIPMessage, _ settings: Settings) {
        removeUntrustedIdentity(from: request, settings)
        try? request.addHeader("P-Asserted-Identity", identity)
    }

    /// Headers an untrusted source may not send on, in or out of a dialog: the identity ones
    /// (Remote-Party-ID is the pre-3325 draft many phones still display; P-Served-User names whom an
    /// app serves, Tandem's to say) and its credentials for Tandem's realm, which never leave Tandem;
    /// credentials for another realm are a downstream proxy's and pass. True when one was removed.
    @discardableResult
    func removeUntrustedIdentity(from request: SIPMessage, _ settings: Settings) -> Bool {
        var removed = false
        for name in ["P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "P-Served-User"] where request.removeHeaders(name) > 0 {
            removed = true
        }
        let credentials = request.headerValues("Proxy-Authorization")
        let others = credentials.filter { DigestCredentials(parsing: $0)?.realm != settings.realm }
        if others.count != credentials.count {
            request.removeHeaders("Proxy-Authorization")
            for value in others { try? request.addHeader("Proxy-Authorization", value) }
            removed = true
        }
        return removed
    }

    /// Requests for Tandem itself other than OPTIONS: nothing is served locally yet.
    private func answerLocally(_ request: SIPMessage, _ inbound: InboundMessage, _ settings: Settings) {
        statistics.answered501.increment()
        respond(to: request, inbound, status: 501, reason: "Not Implemented", settings) { response in
            try response.addHeader("Allow", "OPTIONS")
        }
    }

    // MARK: ACK and CANCEL

    private func handleAck(_ context: RequestContext) {
        let (request, inbound, settings, key) = (context.message, context.inbound, context.settings, context.key)
        // An ACK for a non-2xx final response belongs to the INVITE's server transaction (§17.2.1).
        let absorbed = proxy.withLock(key.shard) { state -> [ProxyEffect]? in
            guard var record = state.servers[key], record.tx.isInvite, record.tx.lastStatus >= 300 else { return nil }
            let actions = record.tx.receiveAck()
            state.servers[key] = record
            return serverEffects(actions, key, record.upstream, &state)
        }
        if let absorbed {
            statistics.acksAbsorbed.increment()
            perform(absorbed, settings)
            return
        }
        // An ACK for a final response Tandem sent statelessly (a challenge, a refusal) ends there: its
        // To-tag is the one Tandem derived from the INVITE's Call-ID, From-tag and branch.
        if let toTag = request.toTag, toTag == statelessTag(request) {
            statistics.acksAbsorbed.increment()
            return
        }
        // An ACK for a 2xx travels end to end along the Route set, statelessly (§16.6, §13.2.2.4).
        var popped = 0
        while let top = request.firstRouteURI, isOurs(top, settings) {
            request.popRoute()
            popped += 1
        }
        let nextHop: SIPURI?
        if let route = request.routes.first?.uri {
            nextHop = route
        } else if !isAddressedToSelf(request.requestURI, settings) && request.to?.tag != nil {
            nextHop = request.requestURI
        } else {
            nextHop = nil
        }
        guard let nextHop, (request.maxForwards ?? 70) > 0 else {
            statistics.acksAbsorbed.increment()
            return
        }
        guard let destination = resolve(nextHop) else {
            statistics.sendErrors.increment()
            return
        }
        let local = localPoint(for: destination, settings)
        // The branch of a stateless forward must be the same for a retransmitted ACK (§16.11).
        let branch = "z9hG4bK" + "Ts" + tag([key.branch, key.sentBy, request.callID ?? "", "ACK"])
        let maxForwards = request.decrementMaxForwards()
        statistics.statelessForwards.increment()
        if let bytes = editedRequest(request, original: inbound.bytes, poppedRoutes: popped, maxForwards: maxForwards,
                                     topLines: ["Via: " + viaValue(local, branch: branch, settings)]) {
            send(bytes, destination, what: "ACK")
            return
        }
        do {
            try request.pushVia(viaValue(local, branch: branch, settings))
            send(try request.serialized(), destination, what: "ACK")
        } catch {
            statistics.sendErrors.increment()
        }
    }

    private func handleCancel(_ request: RequestContext) {
        let settings = request.settings
        let inviteKey = ServerKey(branch: request.key.branch, sentBy: request.key.sentBy, method: .invite, shard: request.key.shard)
        guard let context = proxy.withLock(inviteKey.shard, { state in state.servers[inviteKey]?.context }) else {
            // §16.10: no matching transaction. Tandem holds every INVITE it forwards, so there is
            // nothing downstream to cancel.
            statistics.noTransaction.increment()
            respond(to: request, status: 481, reason: "Call/Transaction Does Not Exist")
            return
        }
        // The CANCEL is answered at once (§9.2, §16.10); its retransmissions get the same answer.
        respond(to: request, status: 200, reason: "OK")
        statistics.cancelsReceived.increment()
        let effects = proxy.withLock(inviteKey.shard) { state in drive(context, &state) { machine, _ in machine.cancel() } }
        perform(effects, settings)
    }

    // MARK: Forwarding (§16.6)

    @discardableResult
    func forward(_ context: RequestContext, stages: [Stage], recordRoute: Bool, call: CallLeg? = nil) -> Bool {
        let (request, inbound, settings, via, key) = (context.message, context.inbound, context.settings, context.via, context.key)
        guard let first = stages.first, !first.targets.isEmpty else { return false }
        let isInvite = context.method == .invite
        // `via` was read after the gateway stamped received/rport on it.
        guard let upstream = Self.responseDestination(via, inbound) else { return false }
        var plan = context.plan
        plan.maxForwards = request.decrementMaxForwards()
        // Several branches each start from a copy; a single branch edits the received message itself.
        let single = stages.count == 1 && first.targets.count == 1
        var base: [UInt8] = []
        if !single {
            guard let bytes = try? request.serialized() else {
                statistics.sendErrors.increment()
                return false
            }
            base = bytes
        }
        var trying: [UInt8]?
        if isInvite {
            // §16.2: a stateful proxy answers an INVITE with 100 Trying at once, stopping retransmissions.
            trying = responseBytes(to: request, status: 100, reason: "Trying", settings)
        }
        let reliable = inbound.transport == .tcp
        enum Creation { case created(UInt64, [ProxyEffect]), duplicate, full }
        let creation = proxy.withLock(key.shard) { state -> Creation in
            // A copy of this request handled by another worker a moment ago already owns the transaction.
            guard state.servers[key] == nil else { return .duplicate }
            guard proxy.admitServer(limit: settings.maxTransactions) else { return .full }
            let id = state.nextContext << 8 | UInt64(key.shard)
            state.nextContext += 1
            var tx = ServerTransaction(isInvite: isInvite, reliable: reliable, timers: settings.timers)
            var effects: [ProxyEffect] = []
            if let trying {
                effects += serverEffects(tx.sendResponse(status: 100, bytes: trying), key, upstream, &state)
            }
            state.servers[key] = ServerRecord(tx: tx, upstream: upstream, context: id)
            state.contexts[id] = ForwardContext(
                machine: ResponseContext(stages: stages, isInvite: isInvite, timerC: settings.timers.timerC), serverKey: key,
                upstream: upstream, base: base, original: inbound, recordRoute: recordRoute, inboundLocal: inbound.local, call: call)
            // A single branch is built from the received message below, not through an effect.
            effects += drive(id, &state) { machine, _ in machine.start() }.filter {
                if case .startBranch = $0 { !single } else { true }
            }
            return .created(id, effects)
        }
        let contextID: UInt64, effects: [ProxyEffect]
        switch creation {
        case .created(let id, let created):
            (contextID, effects) = (id, created)
        case .duplicate:
            statistics.retransmissionsAbsorbed.increment()
            return false
        case .full:
            statistics.overloaded.increment()
            respond(to: request, inbound, status: 503, reason: "Service Unavailable", settings) { response in
                try response.addHeader("Retry-After", "5")
            }
            return false
        }
        statistics.transactionsCreated.increment()
        perform(effects, settings)
        if single { startBranch(contextID, first.targets[0], settings, message: request, plan: plan) }
        return true
    }

    /// Builds and sends one branch: a fresh copy of the request with the target's Request-URI, the
    /// Record-Route(s) and a Via with a unique branch (§16.6 steps 1–8).
    func startBranch(_ contextID: UInt64, _ target: ForwardTarget, _ settings: Settings, message: SIPMessage? = nil,
                     plan: ForwardPlan? = nil) {
        let shard = ProxyShards.shard(context: contextID)
        guard let snapshot = proxy.withLock(shard, { state in state.contexts[contextID] }) else { return }
        let branchFailure: (Int) -> Void = { status in
            let effects = self.proxy.withLock(shard) { state -> [ProxyEffect] in
                guard let index = state.contexts[contextID]?.legs.count else { return [] }
                state.contexts[contextID]?.legs.append(BranchLeg(key: ClientKey(branch: "failed-\(index)", method: .other(""), shard: shard),
                                                                 destination: snapshot.upstream, request: []))
                return self.drive(contextID, &state) { machine, handedBack in
                    machine.branchFailed(status: status, party: target.party, handedBack: handedBack)
                }
            }
            self.perform(effects, settings)
        }
        guard let destination = target.destination ?? resolve(target.nextHop) else {
            statistics.sendErrors.increment()
            branchFailure(503)
            return
        }
        let local = localPoint(for: destination, settings)
        let request: SIPMessage
        if let message {
            request = message
        } else {
            do { request = try SIPMessage.parse(snapshot.base) } catch {
                branchFailure(500)
                return
            }
        }
        let loop = loopHash(request)
        let sequence = branchCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let branch = "z9hG4bK" + "T" + loop + "." + String(sequence, radix: 36)
        let method = request.requestMethod ?? .other("")
        // The new lines, top first: our Via, then Record-Route — two when the request changes transport
        // or interface, the outgoing side on top (RFC 3261 §16.6 step 4, as Kamailio's double RR).
        var topLines = ["Via: " + viaValue(local, branch: branch, settings)]
        if snapshot.recordRoute {
            if snapshot.inboundLocal != local { topLines.append("Record-Route: " + recordRouteValue(local, settings)) }
            topLines.append("Record-Route: " + recordRouteValue(snapshot.inboundLocal, settings))
        }
        var edited: [UInt8]?
        if let plan, !plan.rewritten, target.isUnchanged {
            edited = editedRequest(request, original: plan.original, poppedRoutes: plan.poppedRoutes,
                                   maxForwards: plan.maxForwards, topLines: topLines)
        }
        let bytes: [UInt8]
        if let edited {
            bytes = edited
        } else {
            do {
                if let uri = target.requestURI { try request.setRequestURI(uri) }
                for name in target.removing + target.headers.map(\.name) {
                    request.removeHeaders(name)
                }
                for header in target.headers { try request.addHeader(header.name, header.value) }
                for route in target.routes.reversed() { try request.pushRoute(route) }
                if snapshot.recordRoute {
                    try request.pushRecordRoute(recordRouteValue(snapshot.inboundLocal, settings))
                    if snapshot.inboundLocal != local { try request.pushRecordRoute(recordRouteValue(local, settings)) }
                }
                try request.pushVia(viaValue(local, branch: branch, settings))
                bytes = try request.serialized()
            } catch {
                branchFailure(500)
                return
            }
        }
        let key = ClientKey(branch: branch, method: method, shard: shard)
        let reliable = destination.transport == .tcp
        let effects = proxy.withLock(shard) { state -> [ProxyEffect] in
            guard let isInvite = state.contexts[contextID]?.machine.isInvite else { return [] }
            var index = 0
            var effects = drive(contextID, &state) { machine, _ in
                let started = machine.branchStarted(party: target.party)
                index = started.index
                return started.actions
            }
            state.contexts[contextID]?.legs.append(BranchLeg(key: key, destination: destination, request: bytes))
            var tx = ClientTransaction(isInvite: isInvite, reliable: reliable, timers: settings.timers)
            let actions = tx.start()
            state.clients[key] = ClientRecord(tx: tx, destination: destination, request: bytes, context: contextID, branchIndex: index)
            effects += clientEffects(actions, key, &state, response: nil)
            return effects
        }
        statistics.requestsForwarded.increment()
        perform(effects, settings)
    }

    /// Sends a CANCEL down one branch (§16.10), built from the branch's INVITE (§9.1).
    func sendCancel(_ contextID: UInt64, _ index: Int, _ settings: Settings) {
        let shard = ProxyShards.shard(context: contextID)
        guard let leg = proxy.withLock(shard, { state in state.contexts[contextID].flatMap { $0.legs.indices.contains(index) ? $0.legs[index] : nil } }),
              let invite = try? SIPMessage.parse(leg.request), let cancel = try? invite.makeCancel(),
              let bytes = try? cancel.serialized() else { return }
        let destination = leg.destination
        let branch = invite.topVia?.branch ?? ""
        let key = ClientKey(branch: branch, method: .cancel, shard: shard)
        let effects = proxy.withLock(shard) { state -> [ProxyEffect] in
            var tx = ClientTransaction(isInvite: false, reliable: destination.transport == .tcp, timers: settings.timers)
            let actions = tx.start()
            state.clients[key] = ClientRecord(tx: tx, destination: destination, request: bytes, context: nil, branchIndex: index)
            return clientEffects(actions, key, &state, response: nil)
        }
        statistics.cancelsSent.increment()
        perform(effects, settings)
    }

    // MARK: Values

    /// A forwarded request built by editing the received bytes (see `SIPEdits`): the top Via replaced
    /// by its stamped form (received/rport), `poppedRoutes` Route lines removed, Max-Forwards set, new
    /// lines on top. `nil` when the bytes are not in a shape the edits handle.
    func editedRequest(_ request: SIPMessage, original: [UInt8], poppedRoutes: Int, maxForwards: Int,
                       topLines: [String]) -> [UInt8]? {
        let edits = SIPEdits.RequestEdits(topVia: request.topViaText, removeRoutes: poppedRoutes,
                                          maxForwards: maxForwards, insert: topLines)
        guard let bytes = SIPEdits.request(original, contentLength: request.contentLength, edits) else { return nil }
        statistics.forwardedByEditing.increment()
        return bytes
    }

    static func sentBy(_ via: Via) -> String {
        let host = via.host.utf8.contains(UInt8(ascii: ":")) ? "[\(via.host)]" : via.host
        return "\(host):\(via.port ?? 5060)"
    }

    func viaValue(_ local: ListenPoint, branch: String, _ settings: Settings) -> String {
        "SIP/2.0/\(local.transport.viaName) \(advertised(local, settings));branch=\(branch);rport"
    }

    func recordRouteValue(_ local: ListenPoint, _ settings: Settings) -> String {
        let address = advertised(local, settings)
        return local.transport == .udp ? "<sip:\(address);lr>" : "<sip:\(address);transport=\(local.transport.rawValue);lr>"
    }

    /// host:port as peers must reach this listen point: `sip.advertise` when set, else the listen address.
    func advertised(_ local: ListenPoint, _ settings: Settings) -> SocketAddress {
        SocketAddress(host: settings.advertise ?? local.address.host, port: local.address.port)
    }

    /// The listen point a message to `destination` leaves from: same transport and address family.
    func localPoint(for destination: Destination, _ settings: Settings) -> ListenPoint {
        settings.listen.first { $0.transport == destination.transport && $0.address.isIPv6 == destination.address.isIPv6 }
            ?? settings.listen.first { $0.transport == destination.transport }
            ?? settings.listen[0]
    }

    /// The socket address and transport of a next hop URI (`transport` parameter, default UDP; port
    /// default 5060). Host names are not resolved yet: a next hop must be an IP literal.
    func resolve(_ uri: SIPURI) -> Destination? {
        let transport: TransportKind = uri.transport == "tcp" ? .tcp : .udp
        let address = SocketAddress(host: uri.host, port: uri.port ?? 5060)
        guard address.isNumeric else {
            logger.warning("next hop is not an IP address; DNS resolution is not supported", [("uri", uri.description)])
            return nil
        }
        return Destination(transport: transport, address: address)
    }

    /// The part of a branch that identifies the request's routing-relevant values (§16.6 step 8), so
    /// that a request arriving again unchanged is recognised as a loop (§16.3 step 4) while a spiral
    /// (same request, new Request-URI) is not.
    func loopHash(_ request: SIPMessage, proxyRequire: String? = nil) -> String {
        let extra = proxyRequire ?? request.headerValues("Proxy-Require").joined(separator: ", ")
        return String(request.routingFingerprint(seed: secret, extra: extra), radix: 36)
    }

    private func isLooping(_ request: SIPMessage, _ hash: String, _ settings: Settings) -> Bool {
        let prefix = "z9hG4bKT" + hash + "."
        // Only requests that already passed through a Tandem can loop; a one-Via request cannot.
        guard request.viaCount > 1 else { return false }
        return request.vias.contains { via in
            guard let branch = via.branch, branch.hasPrefix(prefix) else { return false }
            return isOwnAddress(host: via.host, port: via.port ?? 5060, settings)
        }
    }
}
