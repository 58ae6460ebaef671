import SIP
import SIPTransaction
import SIPTransport

/// Responses (RFC 3261 §16.7), timers, and carrying out the effects decided under the lock.
extension Gateway {
    func handleResponse(_ response: SIPMessage, _ inbound: InboundMessage, _ settings: Settings) {
        guard let via = response.topVia, let method = response.cseq?.method else {
            statistics.strayResponses.increment()
            return
        }
        let ours = isOwnAddress(host: via.host, port: via.port ?? 5060, settings)
        guard ours else {
            // §16.7 step 3 / §18.1.2: a response whose top Via is not ours is not for us.
            statistics.strayResponses.increment()
            logger.debug("response not for us dropped", [("via", via.description)])
            return
        }
        let status = response.statusCode
        // Upstream, a response loses only Tandem's Via: remove that line from the received bytes.
        var bytes: [UInt8]
        var edited = false
        if let withoutVia = SIPEdits.responseWithoutTopVia(inbound.bytes, contentLength: response.contentLength) {
            bytes = withoutVia
            edited = true
            statistics.forwardedByEditing.increment()
        } else {
            response.popVia()
            guard let serialized = try? response.serialized() else {
                statistics.sendErrors.increment()
                return
            }
            bytes = serialized
        }
        let key = ClientKey(branch: via.branch ?? "", method: method)
        // A final answer to an INVITE may end a call: its record keeps the reason and the To-tag.
        let final = status >= 200 && method == "INVITE" ? ReceivedFinal(reason: response.reasonPhrase ?? "", toTag: response.toTag) : nil
        let effects = proxyState.withLock { state -> [ProxyEffect]? in
            guard var record = state.clients[key] else { return nil }
            let actions = record.tx.receiveResponse(status: status)
            state.clients[key] = record
            return clientEffects(actions, key, &state, response: (status, bytes), final: final)
        }
        guard let effects else {
            // A provisional response whose transaction has ended came after its final answer (a
            // callee's 180 read by one worker while another forwarded its 200): forwarded, it would
            // reach the caller after the final answer, which RFC 3261 §17.2.1 never allows and UAs
            // treat as an error. RFC 6026 §8.9 forwards no transaction-less response at all.
            guard status >= 200 else {
                statistics.strayResponses.increment()
                logger.debug("provisional response after its transaction ended dropped", [("status", "\(status)")])
                return
            }
            // §16.11: no transaction (a 2xx retransmission after the INVITE transaction ended, or a
            // response after a restart): forward statelessly along the remaining Via.
            guard let next = edited ? response.vias.dropFirst().first : response.topVia else {
                statistics.strayResponses.increment()
                return
            }
            statistics.statelessForwards.increment()
            let transport: TransportKind = next.transport == "TCP" ? .tcp : .udp
            send(bytes, Destination(transport: transport, address: Self.viaAddress(next)), what: "response \(status)")
            return
        }
        perform(effects, settings)
    }

    // MARK: Transaction actions → effects

    func serverEffects(_ actions: [ServerTransaction.Action], _ key: ServerKey, _ upstream: Destination,
                       _ state: inout ProxyState) -> [ProxyEffect] {
        var effects: [ProxyEffect] = []
        for action in actions {
            switch action {
            case .send(let bytes): effects += queueUpstream(bytes, upstream, key, &state)
            case .startTimer(let timer, let after):
                let id = newTimerID()
                state.servers[key]?.timers.append(id)
                effects.append(.schedule(after, .server(key, timer), id))
            case .timedOut: statistics.transactionTimeouts.increment()
            case .terminated:
                if let record = state.servers.removeValue(forKey: key) {
                    if !record.timers.isEmpty { effects.append(.cancelTimers(record.timers)) }
                    if let context = record.context { effects.append(.finish(context: context)) }
                }
            }
        }
        return effects
    }

    /// Runs a client transaction's actions; `response` is the response that caused them, if any.
    func clientEffects(_ actions: [ClientTransaction.Action], _ key: ClientKey, _ state: inout ProxyState,
                       response: (status: Int, bytes: [UInt8])?, final: ReceivedFinal? = nil) -> [ProxyEffect] {
        guard let record = state.clients[key] else { return [] }
        var effects: [ProxyEffect] = []
        for action in actions {
            switch action {
            case .sendRequest: effects.append(.sendRequest(record.request, record.destination, key))
            case .sendAck:
                if let response { effects.append(.sendAck(request: record.request, response: response.bytes, destination: record.destination)) }
            case .startTimer(let timer, let after):
                let id = newTimerID()
                state.clients[key]?.timers.append(id)
                effects.append(.schedule(after, .client(key, timer), id))
            case .passUp(let status):
                if let context = record.context, let response {
                    effects += branchResponse(context, record.branchIndex, status: status, bytes: response.bytes, final: final, &state)
                }
            case .timedOut:
                statistics.transactionTimeouts.increment()
                if let context = record.context {
                    // §16.7 step 2: a timeout counts as a 408 from that branch, never sent downstream.
                    effects += branchResponse(context, record.branchIndex, status: 408, bytes: [], &state)
                }
            case .terminated:
                if let removed = state.clients.removeValue(forKey: key), !removed.timers.isEmpty {
                    effects.append(.cancelTimers(removed.timers))
                }
            }
        }
        return effects
    }

    /// §16.7 steps 4–10 for one response (real or a local 408/503) on one branch.
    func branchResponse(_ contextID: UInt64, _ index: Int, status: Int, bytes: [UInt8], final: ReceivedFinal? = nil,
                        _ state: inout ProxyState) -> [ProxyEffect] {
        guard var context = state.contexts[contextID], index < context.branches.count else { return [] }
        var effects: [ProxyEffect] = []
        if status < 200 {
            guard context.branches[index].finalStatus == nil else { return [] }
            if !context.branches[index].provisional {
                context.branches[index].provisional = true
                if context.branches[index].cancelPending {
                    effects.append(.cancelBranch(context: contextID, branch: index))
                }
            }
            if context.isInvite {
                // Timer C restarts with every provisional response (§16.7 step 2).
                context.branches[index].timerCGeneration += 1
                if let old = context.branches[index].timerC { effects.append(.cancelTimers([old])) }
                let id = newTimerID()
                context.branches[index].timerC = id
                effects.append(.schedule(currentSettings.timers.timerC, .timerC(
                    context: contextID, branch: index, generation: context.branches[index].timerCGeneration), id))
            }
            state.contexts[contextID] = context
            // §16.7 step 5: provisional responses other than 100 go upstream at once.
            if status > 100 && !context.finalSent {
                effects += sendUpstream(contextID, status: status, bytes: bytes, &state)
            }
            return effects
        }
        if let timerC = context.branches[index].timerC {
            // A final answer ends Timer C for this branch.
            effects.append(.cancelTimers([timerC]))
            context.branches[index].timerC = nil
        }
        if status < 300 {
            let first = !context.answered
            if context.branches[index].finalStatus == nil { context.branches[index].finalStatus = status }
            context.answered = true
            context.stages.removeAll()
            state.contexts[contextID] = context
            // Every 2xx goes upstream (§16.7 step 5); the first ends the server transaction, later ones
            // are forwarded statelessly.
            if first && !context.finalSent {
                effects += sendUpstream(contextID, status: status, bytes: bytes, reason: final?.reason, toTag: final?.toTag,
                                        party: context.branches[index].party, &state)
            } else {
                effects += queueUpstream(bytes, context.upstream, context.serverKey, &state)
            }
            if first {
                // §16.7 step 10: the call is answered; cancel every branch still ringing.
                for other in context.branches.indices where other != index && context.branches[other].finalStatus == nil {
                    effects.append(.cancelBranch(context: contextID, branch: other))
                }
            }
            effects += branchFinished(contextID, &state)
            return effects
        }
        guard context.branches[index].finalStatus == nil else { return effects }
        context.branches[index].finalStatus = status
        context.finals.append((status, bytes, final?.reason))
        if status >= 600 && !context.sawGlobalFailure {
            // §16.7 step 5: a 6xx ends the fork: cancel the others, start no new branch.
            context.sawGlobalFailure = true
            context.stages.removeAll()
            for other in context.branches.indices where context.branches[other].finalStatus == nil {
                effects.append(.cancelBranch(context: contextID, branch: other))
            }
        }
        state.contexts[contextID] = context
        effects += branchFinished(contextID, &state)
        return effects
    }

    /// After a branch ends: start the next stage when this one ended in a way that allows it, or
    /// answer upstream once every branch is final.
    func branchFinished(_ contextID: UInt64, _ state: inout ProxyState) -> [ProxyEffect] {
        guard let context = state.contexts[contextID] else { return [] }
        if !context.answered && !context.cancelled && !context.sawGlobalFailure && !context.stages.isEmpty
            && context.activeBranches == 0 {
            let statuses = context.finals[context.current.firstFinal...].map(\.status)
            let handedBack = context.current.stage.chainToken.map(returnedChains.contains) ?? false
            if let best = ResponseSelection.best(statuses), context.current.stage.advance.allows(statuses[best]), !handedBack {
                return startNextStage(contextID, &state)
            }
        }
        guard context.activeBranches == 0 else { return [] }
        if context.finalSent || context.answered {
            return context.finalSent ? [.finish(context: contextID)] : []
        }
        let statuses = context.finals.map(\.status)
        guard let best = ResponseSelection.best(statuses) else { return [] }
        let chosen = context.finals[best]
        state.contexts[contextID] = context
        var bytes = chosen.bytes
        var status = chosen.status
        var reason = chosen.reason
        let forwarded = ResponseSelection.forwardedStatus(status)
        if bytes.isEmpty || forwarded.status != status || context.cancelled || [401, 407].contains(status) {
            if let composed = composeFinal(context, chosen: best, status: &status) {
                bytes = composed.bytes
                reason = composed.reason
            }
        }
        return sendUpstream(contextID, status: status, bytes: bytes, reason: reason, byTandem: chosen.bytes.isEmpty, &state)
    }

    /// Starts the next stage's branches (and its timer).
    func startNextStage(_ contextID: UInt64, _ state: inout ProxyState) -> [ProxyEffect] {
        guard var context = state.contexts[contextID], !context.stages.isEmpty else { return [] }
        let stage = context.stages.removeFirst()
        let index = context.current.index + 1
        context.current = CurrentStage(stage: stage, index: index, firstBranch: context.branches.count, firstFinal: context.finals.count)
        state.contexts[contextID] = context
        statistics.stagesStarted.increment()
        var effects: [ProxyEffect] = stage.targets.map { .startBranch(context: contextID, target: $0) }
        if let timeout = stage.timeout {
            effects.append(.schedule(timeout, .stageTimeout(context: contextID, stage: index), newTimerID()))
        }
        return effects
    }

    /// Builds the final response Tandem sends when no downstream response can go as received: a local
    /// 408/503 (timeout or transport error), 503 turned 500, 487 after a CANCEL, and 401/407 with every
    /// branch's challenges merged (§16.7 steps 6–7).
    private func composeFinal(_ context: ForwardContext, chosen: Int, status: inout Int) -> (bytes: [UInt8], reason: String?)? {
        let settings = currentSettings
        var selected = context.finals[chosen]
        if context.cancelled, let terminated = context.finals.first(where: { $0.status == 487 && !$0.bytes.isEmpty }) {
            selected = terminated
        }
        status = selected.status
        if !selected.bytes.isEmpty, let response = try? SIPMessage.parse(selected.bytes) {
            let forwarded = ResponseSelection.forwardedStatus(status)
            if forwarded.status != status, let reason = forwarded.reason {
                response.setStatus(forwarded.status, reason: reason)
                status = forwarded.status
            }
            if [401, 407].contains(status) {
                for (index, other) in context.finals.enumerated() where index != chosen && [401, 407].contains(other.status) {
                    guard let challenge = try? SIPMessage.parse(other.bytes) else { continue }
                    for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
                        for value in challenge.headerValues(name) { try? response.addHeader(name, value) }
                    }
                }
            }
            return (try? response.serialized()).map { ($0, response.reasonPhrase) }
        }
        // A branch that never answered: build the response from the request as received upstream.
        guard let request = try? SIPMessage.parse(context.original.bytes) else { return nil }
        request.stampTopVia(sourceHost: context.original.source.host, sourcePort: context.original.source.port)
        if context.cancelled { status = 487 }
        let reason: String
        switch status {
        case 408: reason = "Request Timeout"
        case 480: reason = "No Answer"
        case 487: reason = "Request Terminated"
        case 503: (status, reason) = (500, "Server Internal Error")
        default: reason = "Server Internal Error"
        }
        return responseBytes(to: request, status: status, reason: reason, settings).map { ($0, reason) }
    }

    /// Sends a response upstream through the server transaction (which keeps it for retransmissions).
    private func sendUpstream(_ contextID: UInt64, status: Int, bytes: [UInt8], reason: String? = nil, toTag: String? = nil,
                              party: TargetParty? = nil, byTandem: Bool = false, _ state: inout ProxyState) -> [ProxyEffect] {
        guard var context = state.contexts[contextID] else { return [] }
        statistics.responsesForwarded.increment()
        var effects: [ProxyEffect] = []
        if status >= 200 {
            context.finalSent = true
            state.contexts[contextID] = context
            if let leg = context.call {
                var appCodes: [String: Int] = [:]
                for branch in context.branches {
                    if let app = branch.party?.appID, let code = branch.finalStatus { appCodes[app] = code }
                }
                effects.append(.callFinal(leg, CallFinal(status: status, reason: reason ?? "", toTag: toTag, party: party,
                                                         cancelled: context.cancelled, byTandem: byTandem, appCodes: appCodes)))
            }
        }
        let key = context.serverKey
        guard var record = state.servers[key] else {
            return effects + queueUpstream(bytes, context.upstream, key, &state)
        }
        let actions = record.tx.sendResponse(status: status, bytes: bytes)
        state.servers[key] = record
        effects += serverEffects(actions, key, record.upstream, &state)
        if status >= 200 && context.activeBranches == 0 { effects.append(.finish(context: contextID)) }
        return effects
    }

    // MARK: Timers

    func fire(_ event: TimerEvent) {
        let settings = currentSettings
        let effects = proxyState.withLock { state -> [ProxyEffect] in
            switch event {
            case .server(let key, let timer):
                guard var record = state.servers[key] else { return [] }
                let actions = record.tx.timerFired(timer)
                state.servers[key] = record
                return serverEffects(actions, key, record.upstream, &state)
            case .client(let key, let timer):
                guard var record = state.clients[key] else { return [] }
                let actions = record.tx.timerFired(timer)
                state.clients[key] = record
                return clientEffects(actions, key, &state, response: nil)
            case .timerC(let contextID, let index, let generation):
                guard let context = state.contexts[contextID], index < context.branches.count else { return [] }
                let branch = context.branches[index]
                guard branch.finalStatus == nil, branch.timerCGeneration == generation else { return [] }
                statistics.timerCFired.increment()
                // §16.8: with a provisional response, CANCEL the branch; without one, treat it as 408.
                if branch.provisional { return [.cancelBranch(context: contextID, branch: index)] }
                return branchResponse(contextID, index, status: 408, bytes: [], &state)
            case .stageTimeout(let contextID, let stage):
                guard var context = state.contexts[contextID], context.current.index == stage, !context.answered,
                      !context.cancelled, !context.finalSent else { return [] }
                statistics.stageTimeouts.increment()
                // The stage's branches are cancelled and count as ended now, so the next stage starts
                // at once instead of after their 487s (which are absorbed when they come).
                var effects: [ProxyEffect] = []
                for index in context.current.firstBranch..<context.branches.count where context.branches[index].finalStatus == nil {
                    let status = context.branches[index].provisional ? context.current.stage.timeoutStatus : 408
                    context.branches[index].finalStatus = status
                    context.branches[index].superseded = true
                    context.finals.append((status, [], nil))
                    if let timerC = context.branches[index].timerC { effects.append(.cancelTimers([timerC])) }
                    effects.append(.cancelBranch(context: contextID, branch: index))
                }
                state.contexts[contextID] = context
                effects += context.stages.isEmpty ? branchFinished(contextID, &state) : startNextStage(contextID, &state)
                return effects
            }
        }
        perform(effects, settings)
    }

    /// An outbound TCP connection failed after the request was queued on it: every client transaction
    /// waiting on that address ends as if the send had failed (§17.1.4).
    public func connectionFailed(to address: SocketAddress) {
        let keys = proxyState.withLock { state in
            state.clients.filter { $0.value.destination.transport == .tcp && $0.value.destination.address == address }.map(\.key)
        }
        let settings = currentSettings
        for key in keys { clientTransportError(key, settings) }
    }

    /// The transport refused a client transaction's request (§17.1.4): the branch ends as a 503.
    func clientTransportError(_ key: ClientKey, _ settings: Settings) {
        let effects = proxyState.withLock { state -> [ProxyEffect] in
            guard var record = state.clients[key] else { return [] }
            let actions = record.tx.transportError()
            state.clients[key] = record
            var effects = clientEffects(actions, key, &state, response: nil)
            if let context = record.context {
                effects += branchResponse(context, record.branchIndex, status: 503, bytes: [], &state)
            }
            return effects
        }
        perform(effects, settings)
    }

    // MARK: Effects

    /// A response for a server transaction's caller, sent after those decided before it (`Outbox`).
    func queueUpstream(_ bytes: [UInt8], _ destination: Destination, _ key: ServerKey, _ state: inout ProxyState) -> [ProxyEffect] {
        state.upstream.queue(bytes, to: destination, for: key) ? [.flushUpstream(key)] : []
    }

    func perform(_ effects: [ProxyEffect], _ settings: Settings) {
        for effect in effects {
            switch effect {
            case .flushUpstream(let key):
                while let batch = proxyState.withLock({ $0.upstream.take(key) }) {
                    for (bytes, destination) in batch { send(bytes, destination, what: "response") }
                }
            case .sendRequest(let bytes, let destination, let key):
                if !send(bytes, destination, what: "request") {
                    clientTransportError(key, settings)
                }
            case .schedule(let after, let event, let id):
                timers.schedule(id, after: after) { [self] in self.fire(event) }
            case .cancelTimers(let ids):
                for id in ids { timers.cancel(id) }
            case .startBranch(let context, let target):
                startBranch(context, target, settings)
            case .cancelBranch(let context, let branch):
                cancelBranch(context, branch, settings)
            case .sendAck(let request, let response, let destination):
                guard let invite = try? SIPMessage.parse(request), let final = try? SIPMessage.parse(response),
                      let ack = try? invite.makeAck(for: final), let bytes = try? ack.serialized() else { continue }
                send(bytes, destination, what: "ACK")
            case .callFinal(let leg, let final):
                callFinal(leg, final, settings)
            case .finish(let contextID):
                proxyState.withLock { state in
                    guard let context = state.contexts[contextID], context.activeBranches == 0 || context.finalSent else { return }
                    if state.servers[context.serverKey]?.context == contextID {
                        // The server transaction lives on (absorbing retransmissions); it no longer
                        // needs the response context.
                        state.servers[context.serverKey]?.context = nil
                    }
                    if context.activeBranches == 0 { state.contexts.removeValue(forKey: contextID) }
                }
            }
        }
    }
}
