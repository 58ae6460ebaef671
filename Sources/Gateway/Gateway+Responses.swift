import SIP
import SIPTransaction
import SIPTransport

/// Responses (RFC 3261 §16.7), timers, and carrying out the effects decided under the lock.
extension Gateway {
    func handleResponse(_ response: SIPMessage, _ inbound: InboundMessage, _ settings: Settings) {
        guard let via = response.topVia, let method = response.cseq.map({ SIPMethod($0.method) }) else {
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
        if let withoutVia = SIPEdits.responseWithoutTopVia(inbound.bytes, contentLength: response.contentLength) {
            bytes = withoutVia
            statistics.forwardedByEditing.increment()
        } else {
            // Bytes the edits do not handle: the whole message through libosip2's serializer.
            guard let full = try? SIPMessage.parse(inbound.bytes) else {
                statistics.sendErrors.increment()
                return
            }
            _ = full.popVia()
            guard let serialized = try? full.serialized() else {
                statistics.sendErrors.increment()
                return
            }
            bytes = serialized
        }
        let key = ClientKey(branch: via.branch ?? "", method: method, shard: proxy.shard(callID: response.callID))
        // A final answer to an INVITE may end a call: its record keeps the reason and the To-tag.
        let final = status >= 200 && method == .invite ? ReceivedFinal(reason: response.reasonPhrase ?? "", toTag: response.toTag) : nil
        let effects = proxy.withLock(key.shard) { state -> [ProxyEffect]? in
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
            guard let next = response.vias.dropFirst().first else {
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
                    proxy.releaseServer()
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
                if let notify = record.notify, status >= 200 {
                    effects.append(.notifyAnswered(notify.id, cseq: notify.cseq, status: status))
                }
                if let context = record.context, let response {
                    effects += drive(context, &state) { machine, handedBack in
                        machine.receive(branch: record.branchIndex, status: status, bytes: response.bytes, final: final, handedBack: handedBack)
                    }
                }
            case .timedOut:
                statistics.transactionTimeouts.increment()
                if let notify = record.notify { effects.append(.notifyAnswered(notify.id, cseq: notify.cseq, status: 408)) }
                if let context = record.context {
                    // §16.7 step 2: a timeout counts as a 408 from that branch, never sent downstream.
                    effects += drive(context, &state) { machine, handedBack in
                        machine.receive(branch: record.branchIndex, status: 408, bytes: [], handedBack: handedBack)
                    }
                }
            case .terminated:
                if let removed = state.clients.removeValue(forKey: key), !removed.timers.isEmpty {
                    effects.append(.cancelTimers(removed.timers))
                }
            }
        }
        return effects
    }

    // MARK: Response contexts

    /// Gives one input to a forwarded request's response context and turns what it decides into
    /// effects: its timers become the timer service's, its answers go through the server transaction.
    func drive(_ contextID: UInt64, _ state: inout ProxyState,
               _ input: (inout ResponseContext, _ handedBack: Bool) -> [ResponseContext.Action]) -> [ProxyEffect] {
        guard var context = state.contexts[contextID] else { return [] }
        // An app that handed the call back along its signed return route has taken it over: its
        // failures are relayed answers and start no next stage.
        let handedBack = context.machine.currentChainToken.map(returnedChains.contains) ?? false
        let actions = input(&context.machine, handedBack)
        var effects: [ProxyEffect] = []
        for action in actions {
            switch action {
            case .startBranch(let target): effects.append(.startBranch(context: contextID, target: target))
            case .sendCancel(let branch): effects.append(.sendCancel(context: contextID, branch: branch))
            case .startTimer(let timer, let after):
                let id = newTimerID()
                if let old = context.timers.updateValue(id, forKey: timer) { effects.append(.cancelTimers([old])) }
                effects.append(.schedule(after, .context(contextID, timer), id))
            case .cancelTimer(let timer):
                if let id = context.timers.removeValue(forKey: timer) { effects.append(.cancelTimers([id])) }
            case .respond(let response):
                // One that goes as received is handed to the server transaction now; one to be built
                // waits for libosip2 outside the lock.
                effects += response.composition != nil ? [.compose(AnswerPath(context), response)]
                    : respondUpstream(AnswerPath(context), response, byTandem: false, &state)
            case .relay(let bytes): effects += queueUpstream(bytes, context.upstream, context.serverKey, &state)
            case .observe(.stageStarted): statistics.stagesStarted.increment()
            case .observe(.stageTimedOut): statistics.stageTimeouts.increment()
            case .observe(.timerCFired): statistics.timerCFired.increment()
            case .finished: effects.append(.finish(context: contextID))
            }
        }
        state.contexts[contextID] = context
        return effects
    }

    /// Sends a response upstream through the server transaction (which keeps it for retransmissions);
    /// a final one also closes the call's leg in its record.
    func respondUpstream(_ context: AnswerPath, _ response: ResponseContext.Response, byTandem: Bool,
                         _ state: inout ProxyState) -> [ProxyEffect] {
        statistics.responsesForwarded.increment()
        var effects: [ProxyEffect] = []
        if response.isFinal, let leg = context.call {
            effects.append(.callFinal(leg, CallFinal(status: response.status, reason: response.reason ?? "", toTag: response.toTag,
                                                     party: response.party, cancelled: response.cancelled, byTandem: byTandem,
                                                     appCodes: response.appCodes)))
        }
        let key = context.serverKey
        guard var record = state.servers[key] else {
            return effects + queueUpstream(response.bytes, context.upstream, key, &state)
        }
        let actions = record.tx.sendResponse(status: response.status, bytes: response.bytes)
        state.servers[key] = record
        return effects + serverEffects(actions, key, record.upstream, &state)
    }

    /// Builds the final response Tandem sends when no downstream response can go as received: a local
    /// 408/503 (timeout or transport error), 503 turned 500, 487 after a CANCEL, and 401/407 with every
    /// branch's challenges merged (§16.7 steps 6–7). Runs outside the lock.
    func composed(_ response: ResponseContext.Response, original: InboundMessage, _ settings: Settings) -> ResponseContext.Response? {
        guard let composition = response.composition else { return response }
        var result = response
        result.composition = nil
        var selected = composition.finals[composition.chosen]
        if response.cancelled, let terminated = composition.finals.first(where: { $0.status == 487 && !$0.bytes.isEmpty }) {
            selected = terminated
        }
        var status = selected.status
        if !selected.bytes.isEmpty, let parsed = try? SIPMessage.parse(selected.bytes) {
            let forwarded = ResponseSelection.forwardedStatus(status)
            if forwarded.status != status, let reason = forwarded.reason {
                parsed.setStatus(forwarded.status, reason: reason)
                status = forwarded.status
            }
            if [401, 407].contains(status) {
                for (index, other) in composition.finals.enumerated() where index != composition.chosen && [401, 407].contains(other.status) {
                    guard let challenge = try? SIPMessage.parse(other.bytes) else { continue }
                    for name in ["WWW-Authenticate", "Proxy-Authenticate"] {
                        for value in challenge.headerValues(name) { try? parsed.addHeader(name, value) }
                    }
                }
            }
            guard let bytes = try? parsed.serialized() else { return nil }
            result.status = status
            result.bytes = bytes
            result.reason = parsed.reasonPhrase
            return result
        }
        // A branch that never answered: build the response from the request as received upstream.
        guard let request = try? SIPMessage.parse(original.bytes) else { return nil }
        request.stampTopVia(sourceHost: original.source.host, sourcePort: original.source.port)
        if response.cancelled { status = 487 }
        let reason: String
        switch status {
        case 408: reason = "Request Timeout"
        case 480: reason = "No Answer"
        case 487: reason = "Request Terminated"
        case 503: (status, reason) = (500, "Server Internal Error")
        default: reason = "Server Internal Error"
        }
        guard let bytes = responseBytes(to: request, status: status, reason: reason, settings) else { return nil }
        result.status = status
        result.bytes = bytes
        result.reason = reason
        return result
    }

    // MARK: Timers

    func fire(_ event: TimerEvent) {
        let settings = currentSettings
        let shard = switch event {
        case .server(let key, _): key.shard
        case .client(let key, _): key.shard
        case .context(let contextID, _): ProxyShards.shard(context: contextID)
        }
        let effects = proxy.withLock(shard) { state -> [ProxyEffect] in
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
            case .context(let contextID, let timer):
                guard state.contexts[contextID]?.timers.removeValue(forKey: timer) != nil else { return [] }
                return drive(contextID, &state) { machine, handedBack in machine.timerFired(timer, handedBack: handedBack) }
            }
        }
        perform(effects, settings)
    }

    /// An outbound TCP connection failed after the request was queued on it: every client transaction
    /// waiting on that address ends as if the send had failed (§17.1.4).
    public func connectionFailed(to address: SocketAddress) {
        let keys = (0..<proxy.count).flatMap { shard in
            proxy.withLock(shard) { state in
                state.clients.filter { $0.value.destination.transport == .tcp && $0.value.destination.address == address }.map(\.key)
            }
        }
        let settings = currentSettings
        for key in keys { clientTransportError(key, settings) }
    }

    /// The transport refused a client transaction's request (§17.1.4): the branch ends as a 503.
    func clientTransportError(_ key: ClientKey, _ settings: Settings) {
        let effects = proxy.withLock(key.shard) { state -> [ProxyEffect] in
            guard var record = state.clients[key] else { return [] }
            let actions = record.tx.transportError()
            state.clients[key] = record
            var effects = clientEffects(actions, key, &state, response: nil)
            if let notify = record.notify { effects.append(.notifyAnswered(notify.id, cseq: notify.cseq, status: 503)) }
            if let context = record.context {
                effects += drive(context, &state) { machine, handedBack in
                    machine.receive(branch: record.branchIndex, status: 503, bytes: [], handedBack: handedBack)
                }
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
                while let batch = proxy.withLock(key.shard, { $0.upstream.take(key) }) {
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
            case .sendCancel(let context, let branch):
                sendCancel(context, branch, settings)
            case .compose(let path, let response):
                let byTandem = response.composition.map { $0.finals[$0.chosen].bytes.isEmpty } ?? false
                guard let final = composed(response, original: path.original, settings) else {
                    statistics.sendErrors.increment()
                    continue
                }
                perform(proxy.withLock(path.serverKey.shard) { state in respondUpstream(path, final, byTandem: byTandem, &state) }, settings)
            case .sendAck(let request, let response, let destination):
                guard let invite = try? SIPMessage.parse(request), let final = try? SIPMessage.parse(response),
                      let ack = try? invite.makeAck(for: final), let bytes = try? ack.serialized() else { continue }
                send(bytes, destination, what: "ACK")
            case .callFinal(let leg, let final):
                callFinal(leg, final, settings)
            case .notifyAnswered(let id, let cseq, let status):
                presenceAnswered(id, cseq: cseq, status: status)
            case .finish(let contextID):
                let leftover = proxy.withLock(ProxyShards.shard(context: contextID)) { state -> [TimerID] in
                    guard let context = state.contexts[contextID],
                          context.machine.activeBranches == 0 || context.machine.finalSent else { return [] }
                    if state.servers[context.serverKey]?.context == contextID {
                        // The server transaction lives on (absorbing retransmissions); it no longer
                        // needs the response context.
                        state.servers[context.serverKey]?.context = nil
                    }
                    guard context.machine.activeBranches == 0 else { return [] }
                    state.contexts.removeValue(forKey: contextID)
                    return Array(context.timers.values)
                }
                // A stage timer still pending has nothing left to time.
                for id in leftover { timers.cancel(id) }
            }
        }
    }
}
