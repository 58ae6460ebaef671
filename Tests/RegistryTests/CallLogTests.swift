import Foundation
import JSON
import Testing
@testable import Registry

@Suite struct CallLogTests {
    func call(_ n: Int) -> OpenCall {
        var call = OpenCall(callID: "c\(n)@test", fromTag: "f\(n)", cseq: 1, callerNumber: "+33100000000", dialled: "+33612345678",
                            destination: "+33612345678", decision: .accept, accountID: "smith", users: ["alice"], startTime: 1_000 * Int64(n))
        call.toTag = "t\(n)"
        call.answeredUserID = "alice"
        call.answerTime = call.startTime + 500
        return call
    }

    func ended(_ call: OpenCall) -> CallRecord {
        call.record(endTime: call.startTime + 10_500, sipCode: 200, sipReason: "OK", disposition: .answered, hangupBy: .caller, endReason: .bye)
    }

    func openCalls(_ registry: Registry) throws -> Int {
        try registry.read { s throws(RegistryError) in try s.count("SELECT count(*) FROM open_calls") }
    }

    @Test func aCallOpenedAndEndedInOneBatchLeavesOnlyItsRecordAndEvents() throws {
        let fixture = try RegistryFixture()
        let log = CallLog(registry: fixture.registry)
        let opened = call(1)
        log.record(.started(opened))
        log.record(.answered(opened))
        log.record(.closed(ended(opened)))
        log.flush()
        #expect(try openCalls(fixture.registry) == 0)
        let records = try fixture.registry.read { s throws(RegistryError) in try s.callRecords(CallRecordFilter()) }
        #expect(records.count == 1)
        let events = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: nil, limit: 10) }
        #expect(events.map(\.type) == ["call.incoming", "call.answered", "call.ended"])
        let payload = try JSONValue.parse(events[2].payload)
        #expect(payload["cdr_id"]?.integerValue == Int64(records[0].id))
        #expect(payload["billable_ms"]?.integerValue == 10_000)
        #expect(payload["disposition"]?.stringValue == "answered")
    }

    @Test func aCallEndedInALaterBatchIsForgottenAsOpen() throws {
        let fixture = try RegistryFixture()
        let log = CallLog(registry: fixture.registry)
        let opened = call(2)
        log.record(.started(opened))
        log.record(.answered(opened))
        log.flush()
        #expect(try openCalls(fixture.registry) == 1)
        let state = try fixture.registry.read { s throws(RegistryError) in
            try s.firstRow("SELECT state FROM open_calls", []) { $0.text(0) }
        }
        // The newest state of the batch, the answered one, is what a restart would close.
        #expect(state.flatMap { try? JSONValue.parse($0) }?["answer_time"]?.integerValue != nil)
        log.record(.closed(ended(opened)))
        log.flush()
        #expect(try openCalls(fixture.registry) == 0)
    }

    @Test func aRecordWrittenTwiceEndsItsCallOnce() throws {
        let fixture = try RegistryFixture()
        let log = CallLog(registry: fixture.registry)
        let record = ended(call(3))
        log.record(.closed(record))
        log.flush()
        log.record(.closed(record))
        log.flush()
        let events = try fixture.registry.read { s throws(RegistryError) in try s.events(since: 0, type: "call.ended", limit: 10) }
        #expect(events.count == 1)
        #expect(try fixture.registry.read { s throws(RegistryError) in try s.callRecords(CallRecordFilter()) }.count == 1)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1_795_000_000_123), "2026-11-18T11:06:40.123Z"),
        (Int64(951_782_400_007), "2000-02-29T00:00:00.007Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
    ])
    func timestampsAreRFC3339WithMilliseconds(milliseconds: Int64, text: String) {
        #expect(Timestamp.rfc3339(milliseconds: milliseconds) == text)
        #expect(Timestamp.milliseconds(rfc3339: text) == milliseconds)
    }
}
