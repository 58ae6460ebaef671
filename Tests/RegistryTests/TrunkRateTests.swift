import Foundation
import Synchronization
import Testing
@testable import Registry

/// Rate decks and what settlement reads of trunk calls (docs/settlement.md "Trunks").
@Suite struct TrunkRateTests {
    let november = Timestamp.milliseconds(rfc3339: "2026-11-01T00:00:00Z")!
    let december = Timestamp.milliseconds(rfc3339: "2026-12-01T00:00:00Z")!
    let october = Timestamp.milliseconds(rfc3339: "2026-10-01T00:00:00Z")!

    func record(_ id: String, trunk: String?, start: Int64, disposition: CallRecord.Disposition = .answered) -> CallRecord {
        let answered = disposition == .answered || disposition == .interrupted
        return CallRecord(callID: id, fromTag: "f", cseq: 1, callerNumber: "+33612345678", dialled: "+447700900123",
                          destination: "+447700900123", decision: .outbound, accountID: "smith", trunkID: trunk, startTime: start,
                          answerTime: answered ? start + 1_000 : nil, endTime: start + 61_000, sipCode: answered ? 200 : 486,
                          sipReason: answered ? "OK" : "Busy Here", disposition: disposition, hangupBy: .caller,
                          endReason: disposition == .interrupted ? .interrupted : answered ? .bye : .final)
    }

    @Test func aDeckIsSetListedAndLookedUpByTheLongestPrefix() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        try fixture.registry.write { s throws(RegistryError) in
            let uk = try s.setTrunkRate(providerID: "telco", prefix: "+44", fields: TrunkRateFields(ratePerMinute: 5), acting: nil)
            #expect(uk.minimum == 60 && uk.increment == 60 && uk.connectFee == 0)
            _ = try s.setTrunkRate(providerID: "telco", prefix: "+447", fields: TrunkRateFields(ratePerMinute: 12, minimum: 30, increment: 6), acting: nil)
            _ = try s.setTrunkRate(providerID: "telco", prefix: "", fields: TrunkRateFields(ratePerMinute: 1), acting: nil)
            // Changing one field keeps the others.
            let changed = try s.setTrunkRate(providerID: "telco", prefix: "+447", fields: TrunkRateFields(connectFee: 3), acting: nil)
            #expect(changed.ratePerMinute == 12 && changed.increment == 6 && changed.connectFee == 3)
            #expect(try s.trunkRates(providerID: "telco").items.map(\.prefix) == ["", "+44", "+447"])
            #expect(try s.trunkRates(providerID: "telco", destination: "+447700900123").items.map(\.prefix) == ["+447"])
            #expect(try s.trunkRates(providerID: "telco", destination: "+4420").items.map(\.prefix) == ["+44"])
            #expect(try s.trunkRates(providerID: "telco", destination: "+1202").items.map(\.prefix) == [""])
        }
        for (prefix, field) in [("+", "prefix"), ("44a", "prefix"), ("+1234567890123456", "prefix")] {
            #expect(throws: RegistryError.invalid(field, "'\(prefix)' is not a destination prefix (+ and up to 15 digits, digits, or empty for every destination)")) {
                try fixture.registry.write { s throws(RegistryError) in
                    _ = try s.setTrunkRate(providerID: "telco", prefix: prefix, fields: TrunkRateFields(ratePerMinute: 1), acting: nil)
                }
            }
        }
        #expect(throws: RegistryError.invalid("minimum", "must be from 0 to 3600 seconds")) {
            try fixture.registry.write { s throws(RegistryError) in
                _ = try s.setTrunkRate(providerID: "telco", prefix: "+33", fields: TrunkRateFields(ratePerMinute: 1, minimum: 3601), acting: nil)
            }
        }
        #expect(throws: RegistryError.self) {
            try fixture.registry.write { s throws(RegistryError) in
                _ = try s.setTrunkRate(providerID: "vm", prefix: "+33", fields: TrunkRateFields(ratePerMinute: 1), acting: nil)
            }
        }
    }

    @Test func aBadRowLeavesTheDeckAsItWas() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        try fixture.registry.write { s throws(RegistryError) in
            var first = CSVReader(text: "prefix,rate_per_minute,description\n+44,5,UK\n+33,4,France\n")
            let loaded = try s.importTrunkRates(providerID: "telco", &first, replace: false, acting: nil)
            #expect(loaded.rows == 2 && loaded.removed == 0)
        }
        do {
            try fixture.registry.write { s throws(RegistryError) in
                var reader = CSVReader(text: "prefix,rate_per_minute,increment\n+44,6,1\n+49,2,0\n")
                _ = try s.importTrunkRates(providerID: "telco", &reader, replace: true, acting: nil)
            }
            Issue.record("a bad row was accepted")
        } catch {
            #expect(error.field == "increment" && error.reason == "line 3: must be from 1 to 3600 seconds")
        }
        let deck = try fixture.registry.read { s throws(RegistryError) in try s.trunkRates(providerID: "telco").items }
        #expect(deck.map { "\($0.prefix)=\($0.ratePerMinute)/\($0.increment)" } == ["+33=4/60", "+44=5/60"])
        #expect(throws: RegistryError.forbidden("only the operator may import trunk rates")) {
            try fixture.registry.write { s throws(RegistryError) in
                var reader = CSVReader(text: "prefix,rate_per_minute\n+1,1\n")
                _ = try s.importTrunkRates(providerID: "telco", &reader, replace: false, acting: "alice")
            }
        }
    }

    /// Answered records with a trunk are what settlement prices: not calls through the default route,
    /// not unanswered or interrupted ones; a call of a closed month is taken by the next month run
    /// and by that one only.
    @Test func settlementReadsAnsweredTrunkCallsOnceEach() throws {
        let fixture = try RegistryFixture()
        try fixture.household()
        let ids = try fixture.registry.write { s throws(RegistryError) -> [Int] in
            try s.storeSettlement(period: "2026-10", lines: [], tickets: [])
            _ = try s.closeSettlement(period: "2026-10")
            return [
                try s.storeCallRecord(record("out", trunk: "telco", start: november + 3_600_000), wasStored: false),
                try s.storeCallRecord(record("default-route", trunk: nil, start: november + 3_600_000), wasStored: false),
                try s.storeCallRecord(record("busy", trunk: "telco", start: november + 3_600_000, disposition: .busy), wasStored: false),
                try s.storeCallRecord(record("crashed", trunk: "telco", start: november + 3_600_000, disposition: .interrupted), wasStored: false),
                try s.storeCallRecord(record("late", trunk: "telco", start: november - 60_000), wasStored: false),
                try s.storeCallRecord(record("december", trunk: "telco", start: december + 60_000), wasStored: false),
            ].compactMap { $0 }
        }
        #expect(ids.count == 6)
        let history = try fixture.registry.read { s throws(RegistryError) in try s.settlementHistory(start: november, end: december) }
        #expect(history.trunkCalls.map(\.cdrID) == [ids[0], ids[4]])
        #expect(history.trunkCalls.first == .init(cdrID: ids[0], number: "+33612345678", trunkID: "telco", destination: "+447700900123",
                                                  startTime: november + 3_600_000, billableMilliseconds: 60_000))
        try fixture.registry.write { s throws(RegistryError) in
            try s.storeSettlement(period: "2026-11", lines: [], tickets: [], calls: history.trunkCalls.map(\.cdrID))
        }
        // Rerunning November takes the late call again; December does not.
        let rerun = try fixture.registry.read { s throws(RegistryError) in try s.settlementHistory(start: november, end: december) }
        #expect(rerun.trunkCalls.map(\.cdrID) == [ids[0], ids[4]])
        let next = try fixture.registry.read { s throws(RegistryError) in
            try s.settlementHistory(start: december, end: Timestamp.milliseconds(rfc3339: "2027-01-01T00:00:00Z")!)
        }
        #expect(next.trunkCalls.map(\.cdrID) == [ids[5]])
        #expect(try fixture.registry.read { s throws(RegistryError) in try s.settlementHistory(start: october, end: november) }
            .trunkCalls.map(\.cdrID) == [ids[4]])
    }

    /// A number switched in December was the old carrier's all November: the switch is in November's
    /// history though it was recorded after the month, and says who held the number before.
    @Test func aSwitchRecordedAfterTheMonthIsInItsHistory() throws {
        let now = Atomic<Int64>(november + 17 * 86_400_000)
        let fixture = try RegistryFixture(clock: { now.load(ordering: .relaxed) })
        try fixture.household()
        now.store(december + 2 * 86_400_000, ordering: .relaxed)
        _ = try fixture.registry.write { s throws(RegistryError) in try s.switchProvider("+33612345678", to: "othertelco", acting: nil) }
        let history = try fixture.registry.read { s throws(RegistryError) in try s.settlementHistory(start: november, end: december) }
        #expect(history.carriers == [.init(number: "+33612345678", from: "telco", to: "othertelco", time: december + 2 * 86_400_000)])
        #expect(history.numbers["+33612345678"]?.carrier == "othertelco")
    }

    /// A call in progress keeps its trunk through a restart: the interrupted record still names it.
    @Test func anInterruptedCallKeepsItsTrunk() throws {
        let fixture = try RegistryFixture()
        var call = OpenCall(callID: "x", fromTag: "f", cseq: 1, dialled: "+44", destination: "+44", decision: .outbound, startTime: november)
        call.trunkID = "telco"
        call.answerTime = november + 1_000
        let closed = try fixture.registry.write { s throws(RegistryError) -> [CallRecord] in
            try s.storeOpenCall(call)
            return try s.closeInterruptedCalls()
        }
        #expect(closed.map(\.trunkID) == ["telco"])
    }
}
