import Billing
import Registry
import Testing

@Suite struct CallTrackerTests {
    static func call(_ callID: String = "c1", fromTag: String = "ft", cseq: Int = 1, users: [String] = ["u-bob"],
                     apps: [CallRecord.AppLeg] = []) -> OpenCall {
        OpenCall(callID: callID, fromTag: fromTag, cseq: cseq, callerNumber: "+33100000001", callerUserID: "u-alice",
                 callerAccountID: "acc-a", dialled: "0100000002", destination: "+33100000002", decision: .accept,
                 accountID: "acc-b", users: users, apps: apps, startTime: 1_000)
    }

    static func closed(_ change: CallTracker.Change?) -> CallRecord? {
        if case .closed(let record)? = change { return record }
        return nil
    }

    @Test func answeredCallClosedByTheCallersBye() throws {
        var tracker = CallTracker()
        let call = Self.call()
        #expect(tracker.start(call) == .opened(call))
        _ = tracker.answered(call.key, at: 3_500, toTag: "tt", userID: "u-bob", voicemail: false)
        // A BYE whose From-tag is the call's From-tag comes from the caller.
        let record = try #require(Self.closed(tracker.bye(callID: "c1", fromTag: "ft", toTag: "tt", at: 63_500)))
        #expect(record.disposition == .answered)
        #expect(record.hangupBy == .caller)
        #expect(record.endReason == .bye)
        #expect(record.toTag == "tt")
        #expect(record.answeredUserID == "u-bob")
        #expect(record.setupMilliseconds == 2_500)
        #expect(record.billableMilliseconds == 60_000)
        #expect(record.durationMilliseconds == 62_500)
        #expect(record.sipCode == 200)
        #expect(tracker.count == 0)
        // A retransmitted BYE finds nothing: one record per call.
        #expect(tracker.bye(callID: "c1", fromTag: "ft", toTag: "tt", at: 63_600) == nil)
    }

    @Test func theCalleesByeHasTheCallsFromTagAsItsToTag() throws {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        _ = tracker.answered(call.key, at: 2_000, toTag: "tt", userID: nil, voicemail: false)
        let record = try #require(Self.closed(tracker.bye(callID: "c1", fromTag: "tt", toTag: "ft", at: 5_000)))
        #expect(record.hangupBy == .callee)
        #expect(record.billableMilliseconds == 3_000)
    }

    @Test func aByeBeforeTheAnswerOrForAnotherDialogClosesNothing() {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        #expect(tracker.bye(callID: "c1", fromTag: "ft", toTag: nil, at: 2_000) == nil)
        _ = tracker.answered(call.key, at: 2_000, toTag: "tt", userID: nil, voicemail: false)
        #expect(tracker.bye(callID: "c1", fromTag: "other", toTag: "x", at: 3_000) == nil)
        #expect(tracker.bye(callID: "c2", fromTag: "ft", toTag: "tt", at: 3_000) == nil)
        #expect(tracker.count == 1)
    }

    static let finals: [(status: Int, cancelled: Bool, byTandem: Bool, disposition: CallRecord.Disposition, hangup: CallRecord.Party, end: CallRecord.EndReason)] = [
        (486, false, false, .busy, .callee, .final),
        (600, false, false, .busy, .callee, .final),
        (480, false, true, .noAnswer, .tandem, .final),
        (408, false, true, .noAnswer, .tandem, .final),
        (487, true, false, .cancelled, .caller, .cancel),
        (487, false, true, .noAnswer, .tandem, .final),
        (603, false, false, .rejected, .callee, .final),
        (403, false, false, .rejected, .callee, .final),
        (302, false, false, .rejected, .callee, .final),
        (404, false, false, .failed, .callee, .final),
        (500, false, true, .failed, .tandem, .final),
        (503, false, false, .failed, .callee, .final),
    ]

    @Test(arguments: finals)
    func unansweredCallsCloseWithTheirFinalAnswer(_ row: (status: Int, cancelled: Bool, byTandem: Bool, disposition: CallRecord.Disposition,
                                                          hangup: CallRecord.Party, end: CallRecord.EndReason)) throws {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        let record = try #require(Self.closed(tracker.failed(call.key, at: 9_000, status: row.status, reason: "R", cancelled: row.cancelled,
                                                            byTandem: row.byTandem)))
        #expect(record.disposition == row.disposition)
        #expect(record.hangupBy == row.hangup)
        #expect(record.endReason == row.end)
        #expect(record.sipCode == row.status)
        #expect(record.answerTime == nil)
        #expect(record.billableMilliseconds == 0)
        #expect(record.setupMilliseconds == 8_000)
    }

    @Test func aFinalFailureAfterTheAnswerIsNotTheCallsEnd() {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        _ = tracker.answered(call.key, at: 2_000, toTag: "tt", userID: nil, voicemail: false)
        #expect(tracker.failed(call.key, at: 3_000, status: 487, reason: "Request Terminated", byTandem: false) == nil)
        #expect(tracker.count == 1)
    }

    @Test func aLegHandedBackContinuesTheCall() throws {
        var tracker = CallTracker()
        let apps = [CallRecord.AppLeg(appID: "screen", providerID: "screenco", subscriberID: "S-1")]
        var first = Self.call(users: [], apps: apps)
        first.decision = .chain
        _ = tracker.start(first)
        let returning = Self.call(users: ["u-bob", "u-carol"])
        guard case .updated(let merged) = tracker.start(returning) else {
            Issue.record("a returning leg must continue the open call")
            return
        }
        #expect(merged.users == ["u-bob", "u-carol"])
        #expect(merged.decision == .chain)
        #expect(tracker.count == 1)
        _ = tracker.answered(first.key, at: 4_000, toTag: "tt", userID: "u-carol", voicemail: false)
        // The 200 relayed back through the app changes nothing more.
        #expect(tracker.answered(first.key, at: 4_010, toTag: "tt", userID: nil, voicemail: false) == nil)
        let record = try #require(Self.closed(tracker.bye(callID: "c1", fromTag: "ft", toTag: "tt", at: 10_000)))
        #expect(record.answeredUserID == "u-carol")
        #expect(record.answerTime == 4_000)
        #expect(record.apps == apps)
    }

    @Test func appCodesAreKeptOnTheRecord() throws {
        var tracker = CallTracker()
        let apps = [CallRecord.AppLeg(appID: "screen", providerID: "screenco", subscriberID: "S-1")]
        let call = Self.call(apps: apps)
        _ = tracker.start(call)
        let record = try #require(Self.closed(tracker.failed(call.key, at: 2_000, status: 500, reason: "Server Internal Error",
                                                            byTandem: true, appCodes: ["screen": 503])))
        #expect(record.apps.first?.sipCode == 503)
    }

    @Test func voicemailAnsweringMakesItAVoicemailCall() throws {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        _ = tracker.answered(call.key, at: 31_000, toTag: "vm", userID: nil, voicemail: true)
        let record = try #require(Self.closed(tracker.bye(callID: "c1", fromTag: "ft", toTag: "vm", at: 41_000)))
        #expect(record.decision == .voicemail)
        #expect(record.answeredUserID == nil)
    }

    @Test func aRetryAfterARedirectIsAnotherCall() {
        var tracker = CallTracker()
        _ = tracker.start(Self.call(cseq: 1))
        #expect(tracker.start(Self.call(cseq: 2)) == .opened(Self.call(cseq: 2)))
        #expect(tracker.count == 2)
    }

    @Test func timeoutClosesOnlyAnsweredCalls() throws {
        var tracker = CallTracker()
        let call = Self.call()
        _ = tracker.start(call)
        #expect(tracker.timedOut(call.key, at: 5_000) == nil)
        _ = tracker.answered(call.key, at: 2_000, toTag: "tt", userID: nil, voicemail: false)
        let record = try #require(Self.closed(tracker.timedOut(call.key, at: 14_402_000)))
        #expect(record.endReason == .timeout)
        #expect(record.hangupBy == .tandem)
        #expect(record.disposition == .answered)
        #expect(record.billableMilliseconds == 14_400_000)
    }

    @Test func refusedCallsAreRejectedByTandem() {
        let record = CallTracker.refused(Self.call(), at: 1_005, status: 403, reason: "Plan limit reached")
        #expect(record.disposition == .rejected)
        #expect(record.hangupBy == .tandem)
        #expect(record.endReason == .final)
        #expect(record.setupMilliseconds == 5)
    }
}
