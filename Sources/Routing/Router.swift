import RegistryModel

/// The routing decision: a pure function of the call's facts, the dialplans, the registry (and
/// presence) as values, and the time. It says what to do and every reason why; the gateway carries
/// it out, `route.explain` prints it.
public enum Router {
    /// - Parameter explain: write the steps; the call path asks for them only when it logs them.
    public static func decide(_ facts: CallFacts, dialplans: DialplanSet, directory: some RoutingDirectory,
                              policy: RoutingPolicy, now: Int64, explain: Bool = true) -> Decision {
        var run = Run(facts: facts, directory: directory, policy: policy, now: now, explaining: explain)
        let (normalized, numberClass) = run.normalise(dialplans)
        let outcome = run.route(normalized, numberClass: numberClass)
        return Decision(outcome: outcome, steps: run.log.steps, normalized: normalized, numberClass: numberClass)
    }
}

/// The steps written so far: a reference, so writing one does not need exclusive access to the run
/// whose state the step's words describe.
final class StepLog {
    var steps: [Step] = []
}

/// The state of one decision: the dialplan's translation, the steps, the numbers visited by transfers.
struct Run<Directory: RoutingDirectory> {
    let facts: CallFacts
    let directory: Directory
    let policy: RoutingPolicy
    let now: Int64
    let explaining: Bool
    let log = StepLog()
    var translation: Translation?
    var visited: [String] = []

    init(facts: CallFacts, directory: Directory, policy: RoutingPolicy, now: Int64, explaining: Bool) {
        self.facts = facts
        self.directory = directory
        self.policy = policy
        self.now = now
        self.explaining = explaining
    }

    /// Steps are words for people; the detail is built only when someone will read it.
    func note(_ stage: String, _ detail: @autoclosure () -> String) {
        guard explaining else { return }
        log.steps.append(Step(stage: stage, detail: detail()))
    }

    // MARK: Dialplan

    mutating func normalise(_ dialplans: DialplanSet) -> (String, NumberClass?) {
        guard let name = policy.dialplan(for: facts.origin) else {
            note("dialplan", "no dialplan for this origin; \(facts.dialled) kept as dialled")
            return (facts.dialled, nil)
        }
        guard let plan = dialplans[name] else {
            note("dialplan", "dialplan '\(name)' is not loaded; \(facts.dialled) kept as dialled")
            return (facts.dialled, nil)
        }
        let translation = plan.translate(facts.dialled)
        self.translation = translation
        note("dialplan", translation.explanation)
        return (translation.output, translation.numberClass)
    }

    // MARK: The decision

    mutating func route(_ number: String, numberClass: NumberClass?) -> Outcome {
        let emergency = numberClass == .emergency
        if let deny = translation?.deny {
            note("destination", "the dialplan forbids this destination")
            return .reject(status: 403, reason: deny)
        }
        // The caller's own standing: suspended accounts and missing grants stop calls, except to
        // emergency destinations, which are never blocked.
        if case .user(let userID) = facts.origin {
            guard let user = directory.user(userID), let account = directory.account(user.accountID) else {
                note("caller", "user '\(userID)' is not in the registry")
                return .reject(status: 403, reason: "Unknown caller")
            }
            if account.status == .suspended {
                if !emergency {
                    note("caller", "account '\(account.id)' is suspended")
                    return .reject(status: 403, reason: "Account suspended")
                }
                note("caller", "account '\(account.id)' is suspended, but emergency destinations are never blocked")
            }
            if !emergency, let required = Self.grant(for: numberClass), !user.grants.contains(required) {
                note("caller", "user '\(userID)' lacks the '\(required)' grant a \(numberClass!.rawValue) destination needs")
                return .reject(status: 403, reason: "\(numberClass!.rawValue.capitalized) calls not allowed for this user")
            }
        }
        if let entry = directory.number(number) {
            if case .chainReturn(let provider, let step) = facts.origin {
                note("chain", "returning from step \(step + 1) (provider '\(provider)')")
                return inbound(entry, afterStep: step)
            }
            return inbound(entry, afterStep: nil)
        }
        if let outcome = toUsername(number) { return outcome }
        return exit(number, emergency: emergency)
    }

    static func grant(for numberClass: NumberClass?) -> String? {
        switch numberClass {
        case .international: Service.international
        case .premium: Service.premium
        default: nil
        }
    }

    /// A number Tandem does not own: out through the dialplan's trunk or the default route, for
    /// callers allowed to call out.
    mutating func exit(_ number: String, emergency: Bool) -> Outcome {
        switch facts.origin {
        case .chainReturn(let id, _):
            note("number", "\(number) is not a number of this registry (handed back by provider '\(id)')")
            return .reject(status: 404, reason: "Unknown number")
        case .provider(let id):
            // A carrier delivers calls to Tandem's numbers; an app provider may also place calls out
            // (a conference bridge dialling a participant).
            if directory.provider(id)?.kind == .carrier {
                note("number", "\(number) is not a number of this registry (call from carrier '\(id)')")
                return .reject(status: 404, reason: "Unknown number")
            }
            note("caller", "provider '\(id)' places a call out")
        case .user(let id):
            if !emergency, let user = directory.user(id), !user.grants.contains(Service.outbound) {
                note("caller", "user '\(id)' lacks the 'outbound' grant")
                return .reject(status: 403, reason: "Outbound calls not allowed for this user")
            }
        case .peer:
            break
        }
        if let trunk = translation?.trunk {
            guard let provider = directory.provider(trunk), provider.kind != .app, !provider.hops.isEmpty else {
                note("exit", "the dialplan names trunk '\(trunk)', which is not a carrier provider with hops")
                return .reject(status: 503, reason: "Trunk \(trunk) unavailable")
            }
            note("exit", "\(number) leaves through trunk '\(trunk)' (\(provider.hops[0]))")
            return .outbound(number: number, via: .trunk(trunk, hops: provider.hops))
        }
        if policy.hasDefaultRoute {
            note("exit", "\(number) is not ours; it leaves through routing.default_route")
            return .outbound(number: number, via: .defaultRoute)
        }
        note("exit", "\(number) is not ours and no route leads out")
        return .reject(status: 404, reason: "No Route To Destination")
    }

    /// A Request-URI naming a SIP username rather than a number: that user's devices.
    mutating func toUsername(_ name: String) -> Outcome? {
        guard !name.hasPrefix("+"), let user = directory.user(sipUsername: name) else { return nil }
        note("number", "'\(name)' is the SIP username of user '\(user.id)'")
        guard let account = directory.account(user.accountID), account.status == .active else {
            note("account", "account '\(user.accountID)' is suspended")
            return .reject(status: 403, reason: "Account suspended")
        }
        return callees([user], number: nil, delivery: Delivery(), voicemail: nil)
    }

    /// A call to one of Tandem's numbers: suspension, the inbound chain, then the callee users.
    mutating func inbound(_ entry: NumberEntry, afterStep: Int?) -> Outcome {
        note("number", "\(entry.number) is a \(entry.kind.rawValue) number of account '\(entry.accountID)'")
        guard let account = directory.account(entry.accountID) else {
            return .reject(status: 404, reason: "Unknown number")
        }
        if account.status == .suspended {
            note("account", "account '\(account.id)' is suspended")
            return .reject(status: 403, reason: "Account suspended")
        }
        var hops: [AppHop] = []
        var voicemail: AppHop?
        for activation in directory.activeActivations(of: entry.number) {
            guard let app = directory.app(activation.appID) else { continue }
            let hop = AppHop(appID: app.id, kind: app.kind, providerID: activation.providerID, subscriberID: activation.subscriberID,
                             uri: activation.routing, onFailure: app.onFailure, step: hops.count)
            if app.kind == "voicemail" {
                if voicemail == nil { voicemail = hop }
            } else {
                hops.append(hop)
            }
        }
        let remaining = hops.filter { $0.step > (afterStep ?? -1) }
        let then = callee(entry, account: account, voicemail: voicemail)
        guard !remaining.isEmpty else {
            if afterStep != nil { note("chain", "no app left in the chain; the call goes on to the callee") }
            return then
        }
        if case .reject = then {
            // Nobody could take the call after the apps: no app is billed for a call that cannot end well.
            note("chain", "the callee cannot be reached; the chain is not entered")
            return then
        }
        note("chain", remaining.map { "\($0.appID) (\($0.kind), provider '\($0.providerID)', as \($0.subscriberID), on failure \($0.onFailure.rawValue))" }
            .joined(separator: " → "))
        return .chain(hops: remaining, then: then)
    }

    mutating func callee(_ entry: NumberEntry, account: Record<Account>, voicemail: AppHop?) -> Outcome {
        let users: [Record<User>]
        switch entry.kind {
        case .personal:
            users = entry.ownerUserID.flatMap { directory.user($0) }.map { [$0] } ?? []
        case .household:
            users = directory.users(inAccount: account.id)
        }
        return callees(users, number: entry.number, delivery: entry.delivery, voicemail: voicemail, zone: account.timeZone)
    }

    /// Each callee's verdict from their availability; the call rings those who can take it.
    mutating func callees(_ users: [Record<User>], number: String?, delivery: Delivery, voicemail: AppHop?,
                          zone: String? = nil) -> Outcome {
        var ringing: [String] = []
        var transfers: [(user: String, target: String)] = []
        var blocked = 0, considered = 0
        for user in users {
            guard user.status == .active else {
                note("callee", "user '\(user.id)' is disabled")
                continue
            }
            considered += 1
            let state: Availability.State
            let choice: ModeChoice?
            // A stored definition is read in place (no copy of its lists); a user without one is
            // always available, which needs no evaluation at all unless someone reads the reasons.
            if let stored = directory.availability(of: user.id) {
                guard let verdict = verdict(user, stored.value, zone: zone) else { blocked += 1; continue }
                (state, choice) = verdict
            } else if explaining {
                guard let verdict = verdict(user, .standard(userID: user.id), zone: zone) else { blocked += 1; continue }
                (state, choice) = verdict
            } else {
                (state, choice) = (.available, nil)
            }
            let registered = directory.isRegistered(user.id)
            switch state {
            case .available, .hidden:
                if registered {
                    note("callee", "user '\(user.id)' is connectable")
                    ringing.append(user.id)
                } else {
                    note("callee", "user '\(user.id)' has no registered device")
                }
            case .notAvailable:
                note("callee", "user '\(user.id)' is not connectable (mode '\(choice?.mode.name ?? "?")')")
            case .transfer:
                note("callee", "user '\(user.id)' is in transfer to \(choice?.mode.target ?? "?")")
                if let target = choice?.mode.target { transfers.append((user.id, target)) }
            }
        }
        if !ringing.isEmpty {
            note("decision", "ring \(ringing.joined(separator: ", ")) (\(delivery.fork.rawValue), \(delivery.ringTimeout) s)"
                + (voicemail.map { ", then voicemail \($0.appID)" } ?? ""))
            return .accept(Delivering(number: number, users: ringing, fork: delivery.fork, ringTimeout: delivery.ringTimeout,
                                      voicemail: voicemail))
        }
        if let transfer = transfers.first {
            return self.transfer(to: transfer.target, from: number, style: delivery.transfer)
        }
        if considered > 0 && blocked == considered {
            note("decision", "every callee declines this caller")
            return .reject(status: 603, reason: "Declined")
        }
        if let voicemail {
            note("decision", "nobody can take the call: voicemail \(voicemail.appID)")
            return .accept(Delivering(number: number, users: [], fork: delivery.fork, ringTimeout: delivery.ringTimeout,
                                      voicemail: voicemail))
        }
        if considered == 0 {
            note("decision", "the number has no active user")
            return .reject(status: 480, reason: "No user for this number")
        }
        note("decision", "no callee is connectable")
        return .reject(status: 480, reason: "Temporarily Unavailable")
    }

    /// One callee's state for this caller at this moment, with the mode that decided it; nil when
    /// the user blocks the caller.
    mutating func verdict(_ user: Record<User>, _ availability: Availability, zone: String?) -> (Availability.State, ModeChoice?)? {
        let caller = facts.caller
        if caller.isListed(in: availability.blocked, lists: availability.lists) {
            note("callee", "user '\(user.id)' blocks \(caller.description)")
            return nil
        }
        let timeZone = zone ?? directory.account(user.accountID)?.timeZone ?? "UTC"
        let choice = availability.mode(for: caller, now: now, local: LocalTime.at(now, zone: timeZone))
        if explaining {
            for reason in choice.reasons { note("availability", "user '\(user.id)': \(reason)") }
        }
        var state = choice.mode.state
        if state != .available && state != .hidden && facts.isUrgent && caller.isListed(in: availability.urgent, lists: availability.lists) {
            note("availability", "user '\(user.id)': \(caller.description) is on the urgent list and the call is \(facts.priority!): mode overridden")
            state = .available
        }
        return (state, choice)
    }

    /// A transfer mode's target: a redirect, or the target routed as a call of its own (at most
    /// `maxTransfers` deep, never twice to one number).
    mutating func transfer(to target: String, from number: String?, style: Delivery.Transfer) -> Outcome {
        if style == .redirect {
            note("decision", "redirect to \(target) (302)")
            return .redirect(to: target)
        }
        if let number { visited.append(number) }
        guard !visited.contains(target) else {
            note("transfer", "\(target) was already visited by this call: transfer loop")
            return .reject(status: 482, reason: "Transfer loop")
        }
        guard visited.count <= policy.maxTransfers else {
            note("transfer", "more than \(policy.maxTransfers) transfers")
            return .reject(status: 482, reason: "Too many transfers")
        }
        note("transfer", "proxy the call to \(target)")
        let then: Outcome
        if let entry = directory.number(target) {
            then = inbound(entry, afterStep: nil)
        } else if let outcome = toUsername(target) {
            then = outcome
        } else if policy.hasDefaultRoute {
            note("exit", "\(target) is not ours; it leaves through routing.default_route")
            then = .outbound(number: target, via: .defaultRoute)
        } else {
            note("exit", "\(target) is not ours and no route leads out")
            then = .reject(status: 480, reason: "Transfer target unreachable")
        }
        return .transfer(to: target, then: then)
    }
}
