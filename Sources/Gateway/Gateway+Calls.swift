import Billing
import JSON
import Registry
import Routing
import SIP
import SIPTransaction

/// Dialog tracking for call detail records (docs/cdr.md): `Billing.CallTracker` decides what each
/// event of a call does; the gateway feeds it and writes what it returns through the `CallLog`.
extension Gateway {
    /// What the record of a routed INVITE starts with.
    func openingCall(_ context: RequestContext, facts: CallFacts, decision: Decision, caller: Caller?) -> OpenCall? {
        let (request, snapshot) = (context.message, context.snapshot)
        guard context.method == .invite, let callID = request.callID, let cseq = request.cseq else { return nil }
        var callerUserID: String?, callerAccountID: String?
        if case .user(let user, let account)? = caller {
            callerUserID = user.id
            callerAccountID = account.id
        }
        var call = OpenCall(callID: callID, fromTag: request.fromTag ?? "", cseq: Int(cseq.number), callerNumber: facts.callerNumber,
                            callerUserID: callerUserID, callerAccountID: callerAccountID, dialled: facts.dialled,
                            destination: decision.normalized, decision: CallRecord.Decision(rawValue: decision.outcome.kind) ?? .accept,
                            accountID: snapshot.number(decision.normalized)?.accountID ?? callerAccountID, startTime: clock())
        // Transfers and chains lead to what follows them; the users offered the call are at the end.
        var next: Outcome? = decision.outcome
        while let outcome = next {
            next = nil
            switch outcome {
            case .accept(let delivering):
                call.users = delivering.users
                if let voicemail = delivering.voicemail { call.apps.append(Self.appLeg(voicemail)) }
            case .transfer(let target, let then):
                call.forwardedTo = target
                next = then
            case .chain(let hops, let then):
                call.apps += hops.map(Self.appLeg)
                next = then
            case .outbound(_, .trunk(let trunk, _)):
                call.trunkID = trunk
            case .reject, .redirect, .outbound:
                break
            }
        }
        return call
    }

    static func appLeg(_ hop: AppHop) -> CallRecord.AppLeg {
        CallRecord.AppLeg(appID: hop.appID, providerID: hop.providerID, subscriberID: hop.subscriberID)
    }

    /// Records a call Tandem answered itself without forwarding it (a refusal, a redirect).
    func callRefused(_ call: OpenCall?, status: Int, reason: String, disposition: CallRecord.Disposition = .rejected) {
        // A leg an app hands back and Tandem refuses is answered through the first leg, whose final
        // answer ends the call.
        guard let call, calls.withLock({ $0.call(call.key) }) == nil else { return }
        statistics.callRecords.increment()
        // Never forwarded: no app used, nothing counted in progress.
        callLog.record(.closed(CallTracker.refused(call, at: clock(), status: status, reason: reason, disposition: disposition)))
    }

    enum CallOpening {
        case opened(CallLeg)
        /// The call log is full: the call is refused rather than left without a record.
        case backlog
        /// The account's plan refuses it.
        case planLimit(Gauges.Limit)
    }

    /// Opens the call of an INVITE about to be forwarded, after its account's plan admits it, or
    /// continues the one an app hands back. Emergency calls are counted but never refused — not
    /// by a plan and not by a full call-record queue (their record goes past its bound).
    func openCall(_ call: OpenCall, emergency: Bool, _ snapshot: RegistrySnapshot) -> CallOpening {
        guard emergency || callLog.hasRoom(for: 4) else {
            statistics.callLogFull.increment()
            logger.warning("call refused: call records are not being written fast enough", [("call_id", call.callID)])
            return .backlog
        }
        let account = Charging.chargedAccount(callerAccountID: call.callerAccountID, accountID: call.accountID)
        let now = clock()
        return calls.withLock { tracker -> CallOpening in
            guard tracker.call(call.key) == nil else {
                write(tracker.start(call), newlyAnswered: false)
                return .opened(CallLeg(key: call.key, continuation: true))
            }
            if let account {
                let plan = snapshot.plan(ofAccount: account)?.value
                switch gauges.withLock({ $0.admit(accountID: account, plan: plan, at: now, exempt: emergency) }) {
                case .admitted:
                    break
                case .refused(let limit):
                    statistics.planRefused.increment()
                    logger.notice("call refused: plan limit reached", [("call_id", call.callID), ("account", account), ("limit", limit.rawValue)])
                    return .planLimit(limit)
                case .overSoftLimit(let limit):
                    statistics.planOverSoftLimit.increment()
                    callLog.record(.event(type: "gauge.exceeded", subject: account, payload: [
                        "account_id": JSONValue(account), "plan": JSONValue(plan?.name), "limit": JSONValue(limit.rawValue),
                        "enforcement": "soft", "call_id": JSONValue(call.callID),
                    ]))
                }
            }
            write(tracker.start(call), newlyAnswered: false)
            statistics.callsOpened.increment()
            return .opened(CallLeg(key: call.key, continuation: false))
        }
    }

    /// The call's INVITE could not be forwarded after all (overload): it ends as Tandem's failure.
    func callNotForwarded(_ leg: CallLeg) {
        guard !leg.continuation else { return }
        calls.withLock { tracker in
            if let change = tracker.failed(leg.key, at: clock(), status: 503, reason: "Service Unavailable", byTandem: true) {
                write(change, newlyAnswered: false)
            }
        }
    }

    /// A final answer reached the caller (or, on a handed-back leg, came from the callee).
    func callFinal(_ leg: CallLeg, _ final: CallFinal, _ settings: Settings) {
        let now = clock()
        if final.status < 300 {
            var userID: String?
            var voicemail = false
            switch final.party {
            case .user(let id)?: userID = id
            case .voicemail?: voicemail = true
            default: break
            }
            let timer = calls.withLock { tracker -> TimerID? in
                tracker.appsAnswered(leg.key, final.appCodes)
                let first = tracker.call(leg.key)?.answerTime == nil
                guard let change = tracker.answered(leg.key, at: now, toTag: final.toTag, userID: userID, voicemail: voicemail) else {
                    return nil
                }
                write(change, newlyAnswered: first)
                guard first else { return nil }
                let timer = newTimerID()
                tracker.setTimer(leg.key, timer.rawValue)
                return timer
            }
            if let timer {
                // `cdr.max_call_duration`: a call whose BYE never passes Tandem still ends on the bill.
                timers.schedule(timer, after: settings.maxCallDuration) { [self] in callTimedOut(leg.key) }
            }
            return
        }
        guard !leg.continuation else {
            calls.withLock { $0.appsAnswered(leg.key, final.appCodes) }
            return
        }
        calls.withLock { tracker in
            if let change = tracker.failed(leg.key, at: now, status: final.status, reason: final.reason, cancelled: final.cancelled,
                                           byTandem: final.byTandem, appCodes: final.appCodes) {
                write(change, newlyAnswered: false)
            }
        }
    }

    /// A BYE on its way through Tandem: the call it belongs to ends, hung up by whoever sent it.
    func callEnded(by request: SIPMessage) {
        guard let callID = request.callID else { return }
        let timer = calls.withLock { tracker -> UInt64? in
            guard let change = tracker.bye(callID: callID, fromTag: request.fromTag, toTag: request.toTag, at: clock()) else { return nil }
            let timer = tracker.lastClosedTimer
            write(change, newlyAnswered: false)
            return timer
        }
        if let timer { timers.cancel(TimerID(timer)) }
    }

    func callTimedOut(_ key: CallKey) {
        calls.withLock { tracker in
            guard let change = tracker.timedOut(key, at: clock()) else { return }
            statistics.callsTimedOut.increment()
            logger.notice("call closed after cdr.max_call_duration without a BYE", [("call_id", key.callID)])
            write(change, newlyAnswered: false)
        }
    }

    /// Hands a change to the call log (which builds the events off the call path).
    private func write(_ change: CallTracker.Change, newlyAnswered: Bool) {
        switch change {
        case .opened(let call):
            callLog.record(.started(call))
        case .updated(let call):
            callLog.record(newlyAnswered ? .answered(call) : .updated(call))
        case .closed(let record):
            statistics.callRecords.increment()
            // Every call the tracker closes was admitted by `openCall`.
            let charges = Charging.charges(of: record)
            if let account = Charging.chargedAccount(callerAccountID: record.callerAccountID, accountID: record.accountID) {
                gauges.withLock { gauges in
                    gauges.release(accountID: account)
                    if let usage = charges.usage { gauges.add(usage) }
                }
            }
            callLog.record(.closed(record, charges))
        }
    }
}
