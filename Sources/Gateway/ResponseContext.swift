/// The response context of one forwarded request (RFC 3261 §16.7) as a state machine: the stages of
/// targets, each branch's progress, the final answers collected, and which one goes upstream.
///
/// Like `ServerTransaction` it takes inputs — a branch started or failed, a response on a branch, a
/// timer, the caller's CANCEL — and returns actions; it holds no socket, clock, lock, logger or
/// counter, so forking, stages, best-response selection, CANCEL and Timer C are tested as tables
/// (ResponseContextTests). The gateway keeps one per forwarded request and carries out its actions:
/// building and sending branches, running timers, composing answers with libosip2 outside its lock.
struct ResponseContext {
    /// The timers a context runs, named by what they guard; the gateway maps them to its timer service.
    enum Timer: Hashable, Sendable {
        /// §16.8: a branch that has not answered finally in time is cancelled (or taken as 408). The
        /// generation changes with every provisional response, which restarts it.
        case timerC(branch: Int, generation: Int)
        /// A stage's ring timeout: its branches are given up on and the next stage starts.
        case stage(Int)
    }

    /// Things worth counting, reported as actions since the machine keeps no counters.
    enum Observation: Equatable, Sendable {
        case stageStarted
        case stageTimedOut
        case timerCFired
    }

    /// A final answer the machine received on a branch (Via already removed), or one it stands for
    /// (empty bytes: a timeout, a transport error, a branch given up on).
    struct Final: Equatable, Sendable {
        var status: Int
        var bytes: [UInt8]
        var reason: String?
    }

    /// A response that goes upstream through the server transaction.
    struct Response: Equatable, Sendable {
        var status: Int
        /// Empty when no branch answered and Tandem must build the response from the request.
        var bytes: [UInt8]
        var reason: String?
        var toTag: String?
        /// Who answered (for a 2xx: the call's answering party).
        var party: TargetParty?
        /// A final answer that cannot go as received (a 503, a merged challenge, an answer after
        /// the caller's CANCEL, a branch that never answered): every final answer and the chosen one.
        var composition: Composition?
        /// Final statuses of the app branches, by app, for the call's record.
        var appCodes: [String: Int] = [:]
        var cancelled = false

        var isFinal: Bool { status >= 200 }
    }

    struct Composition: Equatable, Sendable {
        var finals: [Final]
        var chosen: Int
    }

    enum Action: Equatable, Sendable {
        /// Build and send a branch to this target; report back `branchStarted` or `branchFailed`.
        case startBranch(ForwardTarget)
        /// Send a CANCEL down a branch that has answered provisionally (§16.10, §9.1).
        case sendCancel(branch: Int)
        case startTimer(Timer, after: Double)
        case cancelTimer(Timer)
        /// Send upstream through the server transaction (provisional responses and the final answer).
        case respond(Response)
        /// A later 2xx, forwarded upstream as received without touching the transaction (§16.7 step 5).
        case relay([UInt8])
        case observe(Observation)
        /// The context has answered and no branch is live: it may be dropped.
        case finished
    }

    struct Branch: Equatable, Sendable {
        var provisional = false
        var finalStatus: Int?
        /// CANCEL wanted before any provisional response arrived (§9.1: wait for one).
        var cancelPending = false
        var cancelSent = false
        /// Given up on at its stage's timeout: counted as ended so the next stage starts, while its
        /// CANCEL is still sent and its late answers are absorbed.
        var superseded = false
        var timerCGeneration = 0
        var timerCRunning = false
        var party: TargetParty?
    }

    /// The stage in progress and where it starts among the branches and final answers.
    struct CurrentStage: Equatable, Sendable {
        var stage: Stage
        var index = 0
        var firstBranch = 0
        var firstFinal = 0
    }

    let isInvite: Bool
    /// Timer C's duration (§16.6 step 11: greater than 3 minutes by default).
    let timerC: Double
    private(set) var branches: [Branch] = []
    /// Stages still to come, after the current one.
    private(set) var stages: [Stage]
    private(set) var current: CurrentStage
    private(set) var finals: [Final] = []
    private(set) var finalSent = false
    private(set) var answered = false
    private(set) var cancelled = false
    private(set) var sawGlobalFailure = false
    /// Branches asked for (`startBranch`) and not yet reported started or failed. They count as live:
    /// the gateway starts a stage's branches one after another, outside its lock, and a quick final
    /// answer on the first must not end the fork before the others exist.
    private(set) var starting = 0

    /// - Parameter stages: at least one, the first with at least one target.
    init(stages: [Stage], isInvite: Bool, timerC: Double) {
        precondition(!stages.isEmpty, "a forwarded request has a stage")
        self.stages = Array(stages.dropFirst())
        current = CurrentStage(stage: stages[0])
        self.isInvite = isInvite
        self.timerC = timerC
    }

    var activeBranches: Int { starting + branches.reduce(0) { $0 + ($1.finalStatus == nil ? 1 : 0) } }

    /// The chain token of the stage in progress: the gateway says whether its app handed the call back.
    var currentChainToken: String? { current.stage.chainToken }

    // MARK: Inputs

    /// The first stage's branches and timer.
    mutating func start() -> [Action] {
        starting += current.stage.targets.count
        var actions: [Action] = current.stage.targets.map { .startBranch($0) }
        if let timeout = current.stage.timeout { actions.append(.startTimer(.stage(0), after: timeout)) }
        return actions
    }

    /// A branch was sent; its index is the one later inputs name. An INVITE branch runs Timer C.
    mutating func branchStarted(party: TargetParty?) -> (index: Int, actions: [Action]) {
        starting = max(0, starting - 1)
        let index = branches.count
        branches.append(Branch(party: party))
        guard isInvite else { return (index, []) }
        // Started after the call was answered, cancelled or failed globally: it is cancelled as soon
        // as it rings (§16.7 step 10, §16.10).
        if answered || cancelled || sawGlobalFailure { branches[index].cancelPending = true }
        branches[index].timerCRunning = true
        return (index, [.startTimer(.timerC(branch: index, generation: 0), after: timerC)])
    }

    /// A branch could not be sent at all (no usable next hop: 503; a request that cannot be built: 500).
    mutating func branchFailed(status: Int, party: TargetParty?, handedBack: Bool = false) -> [Action] {
        starting = max(0, starting - 1)
        branches.append(Branch(finalStatus: status, party: party))
        finals.append(Final(status: status, bytes: [], reason: nil))
        return branchFinished(handedBack: handedBack)
    }

    /// §16.7 steps 4–10 for one response on one branch: a real one (Via removed) or a local 408 (a
    /// client transaction timed out) or 503 (a transport error), with empty bytes.
    mutating func receive(branch index: Int, status: Int, bytes: [UInt8], final: ReceivedFinal? = nil,
                          handedBack: Bool = false) -> [Action] {
        guard branches.indices.contains(index) else { return [] }
        var actions: [Action] = []
        if status < 200 {
            // A CANCEL wanted before the branch rang goes now (§9.1), also for a branch given up on
            // at its stage's timeout, which counts as ended but still rings.
            if !branches[index].provisional {
                branches[index].provisional = true
                if branches[index].cancelPending { actions += requestCancel(index) }
            }
            guard branches[index].finalStatus == nil else { return actions }
            if isInvite {
                // Timer C restarts with every provisional response (§16.7 step 2).
                if branches[index].timerCRunning {
                    actions.append(.cancelTimer(.timerC(branch: index, generation: branches[index].timerCGeneration)))
                }
                branches[index].timerCGeneration += 1
                branches[index].timerCRunning = true
                actions.append(.startTimer(.timerC(branch: index, generation: branches[index].timerCGeneration), after: timerC))
            }
            // §16.7 step 5: provisional responses other than 100 go upstream at once.
            if status > 100 && !finalSent {
                actions.append(.respond(Response(status: status, bytes: bytes)))
            }
            return actions
        }
        if branches[index].timerCRunning {
            // A final answer ends Timer C for this branch.
            actions.append(.cancelTimer(.timerC(branch: index, generation: branches[index].timerCGeneration)))
            branches[index].timerCRunning = false
        }
        if status < 300 {
            let first = !answered
            if branches[index].finalStatus == nil { branches[index].finalStatus = status }
            answered = true
            stages.removeAll()
            // Every 2xx goes upstream (§16.7 step 5); the first ends the server transaction, later ones
            // are relayed as they come.
            if first && !finalSent {
                actions += answer(Response(status: status, bytes: bytes, reason: final?.reason, toTag: final?.toTag,
                                           party: branches[index].party))
            } else {
                actions.append(.relay(bytes))
            }
            if first {
                // §16.7 step 10: the call is answered; cancel every branch still ringing.
                for other in branches.indices where other != index && branches[other].finalStatus == nil {
                    actions += requestCancel(other)
                }
            }
            return actions + branchFinished(handedBack: handedBack)
        }
        guard branches[index].finalStatus == nil else { return actions }
        branches[index].finalStatus = status
        finals.append(Final(status: status, bytes: bytes, reason: final?.reason))
        if status >= 600 && !sawGlobalFailure {
            // §16.7 step 5: a 6xx ends the fork: cancel the others, start no new branch.
            sawGlobalFailure = true
            stages.removeAll()
            for other in branches.indices where branches[other].finalStatus == nil {
                actions += requestCancel(other)
            }
        }
        return actions + branchFinished(handedBack: handedBack)
    }

    mutating func timerFired(_ timer: Timer, handedBack: Bool = false) -> [Action] {
        switch timer {
        case .timerC(let index, let generation):
            guard branches.indices.contains(index), branches[index].finalStatus == nil,
                  branches[index].timerCRunning, branches[index].timerCGeneration == generation else { return [] }
            branches[index].timerCRunning = false
            // §16.8: with a provisional response, CANCEL the branch; without one, treat it as 408.
            if branches[index].provisional { return [.observe(.timerCFired)] + requestCancel(index) }
            return [.observe(.timerCFired)] + receive(branch: index, status: 408, bytes: [], handedBack: handedBack)
        case .stage(let stage):
            guard current.index == stage, !answered, !cancelled, !finalSent else { return [] }
            // The stage's branches are cancelled and count as ended now, so the next stage starts at
            // once instead of after their 487s (which are absorbed when they come).
            var actions: [Action] = [.observe(.stageTimedOut)]
            for index in current.firstBranch..<branches.count where branches[index].finalStatus == nil {
                let status = branches[index].provisional ? current.stage.timeoutStatus : 408
                branches[index].finalStatus = status
                branches[index].superseded = true
                finals.append(Final(status: status, bytes: [], reason: nil))
                if branches[index].timerCRunning {
                    actions.append(.cancelTimer(.timerC(branch: index, generation: branches[index].timerCGeneration)))
                    branches[index].timerCRunning = false
                }
                actions += requestCancel(index)
            }
            return actions + (stages.isEmpty ? branchFinished(handedBack: handedBack) : startNextStage())
        }
    }

    /// The caller's CANCEL (§16.10): no new stage starts and every live branch is cancelled; the
    /// final answer then comes from the branches' 487s.
    mutating func cancel() -> [Action] {
        guard !cancelled, !finalSent else { return [] }
        cancelled = true
        stages.removeAll()
        var actions: [Action] = []
        for index in branches.indices where branches[index].finalStatus == nil {
            actions += requestCancel(index)
        }
        return actions
    }

    // MARK: Decisions

    /// A CANCEL for a branch: now if it has rung, otherwise once it does (§9.1); only INVITEs are cancelled.
    private mutating func requestCancel(_ index: Int) -> [Action] {
        let branch = branches[index]
        guard isInvite, branch.finalStatus == nil || branch.superseded, !branch.cancelSent else { return [] }
        guard branch.provisional else {
            branches[index].cancelPending = true
            return []
        }
        branches[index].cancelSent = true
        return [.sendCancel(branch: index)]
    }

    /// After a branch ends: start the next stage when this one ended in a way that allows it, or
    /// answer upstream once every branch is final.
    private mutating func branchFinished(handedBack: Bool) -> [Action] {
        guard activeBranches == 0 else { return [] }
        if !answered && !cancelled && !sawGlobalFailure && !stages.isEmpty {
            let statuses = finals[current.firstFinal...].map(\.status)
            if let best = ResponseSelection.best(statuses), current.stage.advance.allows(statuses[best]), !handedBack {
                return startNextStage()
            }
        }
        if finalSent || answered { return finalSent ? [.finished] : [] }
        guard let best = ResponseSelection.best(finals.map(\.status)) else { return [] }
        let chosen = finals[best]
        var response = Response(status: chosen.status, bytes: chosen.bytes, reason: chosen.reason)
        let forwarded = ResponseSelection.forwardedStatus(chosen.status)
        if chosen.bytes.isEmpty || forwarded.status != chosen.status || cancelled || [401, 407].contains(chosen.status) {
            response.composition = Composition(finals: finals, chosen: best)
        }
        return answer(response) + [.finished]
    }

    private mutating func startNextStage() -> [Action] {
        guard !stages.isEmpty else { return [] }
        let stage = stages.removeFirst()
        let index = current.index + 1
        current = CurrentStage(stage: stage, index: index, firstBranch: branches.count, firstFinal: finals.count)
        starting += stage.targets.count
        var actions: [Action] = [.observe(.stageStarted)]
        actions += stage.targets.map { .startBranch($0) }
        if let timeout = stage.timeout { actions.append(.startTimer(.stage(index), after: timeout)) }
        return actions
    }

    /// The final answer upstream (the context ends once it is sent and no branch is live).
    private mutating func answer(_ response: Response) -> [Action] {
        var response = response
        finalSent = true
        response.cancelled = cancelled
        for branch in branches {
            if let app = branch.party?.appID, let code = branch.finalStatus { response.appCodes[app] = code }
        }
        return [.respond(response)]
    }
}
