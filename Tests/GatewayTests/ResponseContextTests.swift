import SIP
import Testing
@testable import Gateway

/// The response context alone (RFC 3261 §16.7): forking, stages, best response, CANCEL and Timer C as
/// tables of inputs and the actions they must give — no sockets, timers or traces.
@Suite struct ResponseContextTests {
    typealias Action = ResponseContext.Action

    static let alice = ForwardTarget(nextHop: SIPURI(parsing: "sip:192.0.2.1:5060")!, party: .user("alice"))
    static let bob = ForwardTarget(nextHop: SIPURI(parsing: "sip:192.0.2.2:5060")!, party: .user("bob"))
    static let voicemail = ForwardTarget(nextHop: SIPURI(parsing: "sip:192.0.2.9:5060")!, party: .voicemail("vm"))
    static let screening = ForwardTarget(nextHop: SIPURI(parsing: "sip:192.0.2.7:5060")!, party: .app("screen"))
    static let timerC = 180.0

    /// One input to the machine. Branches are named by index, in the order they were started.
    enum Input {
        case start
        case started(TargetParty?)
        case failed(Int)
        case response(Int, status: Int, bytes: String = "")
        case timer(ResponseContext.Timer)
        case cancel
        case handedBack(Int, status: Int)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Runs the inputs and returns each one's actions.
    static func run(_ stages: [Stage], invite: Bool = true, _ inputs: [Input]) -> (ResponseContext, [[Action]]) {
        var machine = ResponseContext(stages: stages, isInvite: invite, timerC: timerC)
        var all: [[Action]] = []
        for input in inputs {
            switch input {
            case .start: all.append(machine.start())
            case .started(let party): all.append(machine.branchStarted(party: party).actions)
            case .failed(let status): all.append(machine.branchFailed(status: status, party: nil))
            case .response(let branch, let status, let text):
                all.append(machine.receive(branch: branch, status: status, bytes: bytes(text)))
            case .timer(let timer): all.append(machine.timerFired(timer))
            case .cancel: all.append(machine.cancel())
            case .handedBack(let branch, let status):
                all.append(machine.receive(branch: branch, status: status, bytes: bytes("x"), handedBack: true))
            }
        }
        return (machine, all)
    }

    static func responses(_ actions: [[Action]]) -> [ResponseContext.Response] {
        actions.flatMap { $0 }.compactMap { if case .respond(let response) = $0 { response } else { nil } }
    }

    @Test func aSingleBranchRingsAndAnswers() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice])], [
            .start, .started(.user("alice")), .response(0, status: 180, bytes: "180"), .response(0, status: 200, bytes: "200"),
        ])
        #expect(actions[0] == [.startBranch(Self.alice)])
        #expect(actions[1] == [.startTimer(.timerC(branch: 0, generation: 0), after: Self.timerC)])
        // Timer C restarts with the provisional response (§16.7 step 2), which goes upstream.
        #expect(actions[2] == [.cancelTimer(.timerC(branch: 0, generation: 0)), .startTimer(.timerC(branch: 0, generation: 1), after: Self.timerC),
                               .respond(.init(status: 180, bytes: Self.bytes("180")))])
        #expect(actions[3] == [.cancelTimer(.timerC(branch: 0, generation: 1)),
                               .respond(.init(status: 200, bytes: Self.bytes("200"), party: .user("alice"))), .finished])
    }

    @Test func a100StaysHere() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice])], [.start, .started(nil), .response(0, status: 100)])
        #expect(!actions[2].contains { if case .respond = $0 { true } else { false } })
    }

    /// §16.7 step 6 across parallel branches: the best final answer once every branch has one.
    @Test(arguments: [
        ([486, 404], 486, false),
        ([404, 302], 302, false),
        ([500, 486, 603], 603, false),
        ([486, 407, 401], 407, true),   // challenges are merged
        ([503, 503], 503, true),        // 503 goes upstream as 500
        ([480, 415], 415, false),
    ])
    func theBestFinalAnswerGoesUpstream(statuses: [Int], chosen: Int, composed: Bool) {
        let targets = statuses.indices.map { ForwardTarget(nextHop: SIPURI(parsing: "sip:192.0.2.\($0 + 1)")!) }
        var inputs: [Input] = [.start] + targets.map { _ in .started(nil) }
        for (index, status) in statuses.enumerated() { inputs.append(.response(index, status: status, bytes: "\(status)")) }
        let (machine, actions) = Self.run([Stage(targets: targets)], inputs)
        let sent = Self.responses(actions)
        #expect(sent.count == 1)
        #expect(sent.first?.status == chosen)
        #expect((sent.first?.composition != nil) == composed)
        #expect(actions.last?.last == .finished)
        #expect(machine.activeBranches == 0 && machine.finalSent)
    }

    @Test func aSuccessCancelsTheBranchesStillRinging() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], [
            .start, .started(.user("alice")), .started(.user("bob")),
            .response(1, status: 180), .response(0, status: 200, bytes: "200"),
            .response(1, status: 487, bytes: "487"),
        ])
        #expect(actions[4].contains(.sendCancel(branch: 1)))
        #expect(actions[4].contains(.respond(.init(status: 200, bytes: Self.bytes("200"), party: .user("alice")))))
        #expect(!actions[4].contains(.finished))
        // The 487 of the cancelled branch is absorbed; the context then ends.
        #expect(actions[5] == [.cancelTimer(.timerC(branch: 1, generation: 1)), .finished])
    }

    @Test func aBranchThatHasNotRungIsCancelledWhenItDoes() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], [
            .start, .started(nil), .started(nil), .response(0, status: 200), .response(1, status: 180),
        ])
        // §9.1: no CANCEL before a provisional response.
        #expect(!actions[3].contains(.sendCancel(branch: 1)))
        #expect(actions[4].contains(.sendCancel(branch: 1)))
        // Nor is its ringing sent upstream after the final answer.
        #expect(Self.responses([actions[4]]).isEmpty)
    }

    /// The gateway starts a stage's branches one by one outside its lock; a final answer can come back
    /// on the first before the second exists. Found by the product benchmark: a household's busy member
    /// answered 486 before the primary's branch was sent, and the caller got the 486.
    @Test func aQuickFailureOnTheFirstBranchWaitsForTheBranchesStillStarting() {
        let (machine, actions) = Self.run([Stage(targets: [Self.bob, Self.alice])], [
            .start, .started(.user("bob")), .response(0, status: 486, bytes: "486"),
            .started(.user("alice")), .response(1, status: 200, bytes: "200"),
        ])
        #expect(Self.responses([actions[2]]).isEmpty)
        #expect(!actions[2].contains(.finished))
        #expect(Self.responses([actions[4]]).map(\.status) == [200])
        #expect(actions[4].contains(.finished))
        #expect(machine.activeBranches == 0)
    }

    @Test func aBranchStartedAfterTheAnswerIsCancelledWhenItRings() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], [
            .start, .started(.user("alice")), .response(0, status: 200, bytes: "200"),
            .started(.user("bob")), .response(1, status: 180),
        ])
        #expect(Self.responses([actions[2]]).map(\.status) == [200])
        #expect(actions[4].contains(.sendCancel(branch: 1)))
        #expect(Self.responses([actions[4]]).isEmpty)
    }

    @Test func aBranchThatFailsToStartCountsAsEnded() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], [
            .start, .started(.user("alice")), .response(0, status: 486, bytes: "486"), .failed(503),
        ])
        #expect(Self.responses([actions[2]]).isEmpty)
        #expect(Self.responses([actions[3]]).map(\.status) == [486])
    }

    @Test func laterSuccessesAreRelayed() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], [
            .start, .started(nil), .started(nil), .response(0, status: 200, bytes: "a"), .response(1, status: 200, bytes: "b"),
        ])
        #expect(actions[4].contains(.relay(Self.bytes("b"))))
        #expect(Self.responses([actions[4]]).isEmpty)
    }

    @Test func aGlobalFailureEndsTheForkAndSkipsLaterStages() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob]), Stage(targets: [Self.voicemail])], [
            .start, .started(nil), .started(nil), .response(1, status: 180), .response(0, status: 603, bytes: "603"),
            .response(1, status: 487, bytes: "487"),
        ])
        #expect(actions[4].contains(.sendCancel(branch: 1)))
        #expect(!actions.flatMap { $0 }.contains(.startBranch(Self.voicemail)))
        #expect(Self.responses([actions[5]]).map(\.status) == [603])
    }

    /// Which endings of a stage start the next one (docs/routing.md: voicemail after no answer, an
    /// app's next hop only when the app itself failed).
    @Test(arguments: [
        (Stage.Advance.unanswered, 486, true),
        (.unanswered, 404, true),
        (.unanswered, 603, false),
        (.failed, 486, false),
        (.failed, 408, true),
        (.failed, 503, true),
    ])
    func aStageEndingStartsTheNextOrAnswers(advance: Stage.Advance, status: Int, advances: Bool) {
        let (_, actions) = Self.run([Stage(targets: [Self.alice], advance: advance), Stage(targets: [Self.voicemail])], [
            .start, .started(nil), .response(0, status: status, bytes: "\(status)"),
        ])
        #expect(actions[2].contains(.startBranch(Self.voicemail)) == advances)
        #expect(actions[2].contains(.observe(.stageStarted)) == advances)
        #expect(Self.responses([actions[2]]).isEmpty == advances)
    }

    @Test func anAppThatHandedTheCallBackDecidesNoNextStage() {
        var chained = Stage(targets: [Self.screening], advance: .failed)
        chained.chainToken = "token"
        let (_, actions) = Self.run([chained, Stage(targets: [Self.alice])], [.start, .started(.app("screen")), .handedBack(0, status: 503)])
        #expect(!actions[2].contains(.startBranch(Self.alice)))
        let answer = Self.responses([actions[2]]).first
        #expect(answer?.status == 503)
        #expect(answer?.appCodes == ["screen": 503])
    }

    @Test func aRingTimeoutGivesUpOnTheStageAndStartsTheNext() {
        let ringing = Stage(targets: [Self.alice], timeout: 20, timeoutStatus: 480)
        let (machine, actions) = Self.run([ringing, Stage(targets: [Self.voicemail])], [
            .start, .started(nil), .response(0, status: 180), .timer(.stage(0)), .started(.voicemail("vm")),
            .response(0, status: 487, bytes: "487"), .response(1, status: 200, bytes: "vm"),
        ])
        #expect(actions[0] == [.startBranch(Self.alice), .startTimer(.stage(0), after: 20)])
        #expect(actions[3] == [.observe(.stageTimedOut), .cancelTimer(.timerC(branch: 0, generation: 1)), .sendCancel(branch: 0),
                               .observe(.stageStarted), .startBranch(Self.voicemail)])
        #expect(machine.finals.first?.status == 480)
        #expect(actions[5].isEmpty)
        #expect(Self.responses([actions[6]]).map(\.status) == [200])
        #expect(actions[6].last == .finished)
    }

    @Test func aStageTimerOfAnEarlierStageDoesNothing() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice], advance: .unanswered), Stage(targets: [Self.bob], timeout: 5)], [
            .start, .started(nil), .response(0, status: 486), .timer(.stage(0)),
        ])
        #expect(actions[3].isEmpty)
    }

    @Test func aGivenUpBranchThatRingsLateIsCancelled() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice], timeout: 20), Stage(targets: [Self.voicemail])], [
            .start, .started(nil), .timer(.stage(0)), .response(0, status: 180),
        ])
        // Not yet ringing at the timeout: counted as 408, cancelled once it rings (§9.1).
        #expect(!actions[2].contains(.sendCancel(branch: 0)))
        #expect(actions[3] == [.sendCancel(branch: 0)])
    }

    @Test func timerCWithoutProvisionalIsA408() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice])], [.start, .started(nil), .timer(.timerC(branch: 0, generation: 0))])
        #expect(actions[2].first == .observe(.timerCFired))
        let answer = Self.responses([actions[2]]).first
        #expect(answer?.status == 408)
        #expect(answer?.composition?.finals.first?.bytes == [])
    }

    @Test func timerCAfterRingingCancelsTheBranch() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice])], [
            .start, .started(nil), .response(0, status: 180), .timer(.timerC(branch: 0, generation: 0)),
            .timer(.timerC(branch: 0, generation: 1)),
        ])
        // The generation the 180 replaced is stale.
        #expect(actions[3].isEmpty)
        #expect(actions[4] == [.observe(.timerCFired), .sendCancel(branch: 0)])
    }

    @Test func theCallersCancelCancelsEveryBranchAndAnswers487() {
        let (machine, actions) = Self.run([Stage(targets: [Self.alice, Self.bob]), Stage(targets: [Self.voicemail])], [
            .start, .started(nil), .started(nil), .response(0, status: 180), .cancel, .response(1, status: 180),
            .response(0, status: 487, bytes: "487a"), .response(1, status: 487, bytes: "487b"), .cancel,
        ])
        #expect(actions[4] == [.sendCancel(branch: 0)])
        // Ringing still goes upstream until the final answer.
        #expect(actions[5] == [.sendCancel(branch: 1), .cancelTimer(.timerC(branch: 1, generation: 0)),
                               .startTimer(.timerC(branch: 1, generation: 1), after: Self.timerC), .respond(.init(status: 180, bytes: []))])
        let answer = Self.responses([actions[7]]).first
        #expect(answer?.status == 487 && answer?.cancelled == true && answer?.composition != nil)
        #expect(!actions.flatMap { $0 }.contains(.startBranch(Self.voicemail)))
        #expect(actions[8].isEmpty)
        #expect(machine.cancelled)
    }

    @Test func aBranchThatCannotBeSentEndsAs503() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice]), Stage(targets: [Self.bob])], [.start, .failed(503), .started(nil)])
        #expect(actions[1] == [.observe(.stageStarted), .startBranch(Self.bob)])
        let (_, alone) = Self.run([Stage(targets: [Self.alice])], [.start, .failed(503)])
        #expect(Self.responses(alone).map(\.status) == [503])
    }

    @Test func aNonInviteRunsNoTimerCAndIsNeverCancelled() {
        let (_, actions) = Self.run([Stage(targets: [Self.alice, Self.bob])], invite: false, [
            .start, .started(nil), .started(nil), .response(0, status: 200), .response(1, status: 404),
        ])
        #expect(actions[1].isEmpty && actions[2].isEmpty)
        #expect(!actions.flatMap { $0 }.contains(.sendCancel(branch: 1)))
        #expect(actions[4] == [.finished])
    }
}
