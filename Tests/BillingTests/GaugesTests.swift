import Testing
import Registry
@testable import Billing

@Suite struct GaugesTests {
    /// 2026-11-21T00:00:00Z.
    let now: Int64 = 1_795_219_200_000

    @Test func aHardPlanRefusesPastEachLimitAndCountsOnlyWhatItAdmits() {
        let plan = Plan(name: "p", maxMinutes: 10, maxCalls: 3, maxConcurrent: 2)
        var gauges = Gauges()
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .admitted)
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .admitted)
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .refused(.concurrent))
        #expect(gauges.inProgress(accountID: "a") == 2)
        // Another account's calls are its own.
        #expect(gauges.admit(accountID: "b", plan: plan, at: now) == .admitted)
        gauges.release(accountID: "a")
        gauges.add(UsageCharge(accountID: "a", day: "2026-11-21", minutes: 9, billableMilliseconds: 500_000))
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .admitted)
        gauges.release(accountID: "a")
        gauges.release(accountID: "a")
        gauges.add(UsageCharge(accountID: "a", day: "2026-11-21", minutes: 1, billableMilliseconds: 1_000))
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .refused(.minutes))
        #expect(gauges.inProgress(accountID: "a") == 0)
        #expect(gauges.usage(accountID: "a", period: "2026-11") == Usage(minutes: 10, calls: 2, billableMilliseconds: 501_000))
    }

    @Test func theCallsLimitCountsAnsweredCallsInThePeriod() {
        let plan = Plan(name: "p", maxCalls: 1)
        var gauges = Gauges(usage: [(accountID: "a", day: "2026-11-20", usage: Usage(minutes: 1, calls: 1))])
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .refused(.calls))
        // Per day, yesterday's call does not count.
        #expect(gauges.admit(accountID: "a", plan: Plan(name: "d", period: .day, maxCalls: 1), at: now) == .admitted)
        // A new month starts from nothing, and the old month's days are dropped.
        gauges.add(UsageCharge(accountID: "a", day: "2026-12-01", minutes: 0, billableMilliseconds: 0))
        #expect(gauges.usage(accountID: "a", period: "2026-11") == Usage())
    }

    @Test func aSoftPlanLetsTheCallThroughAndSaysWhichLimit() {
        let plan = Plan(name: "s", maxConcurrent: 1, enforcement: .soft)
        var gauges = Gauges()
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .admitted)
        #expect(gauges.admit(accountID: "a", plan: plan, at: now) == .overSoftLimit(.concurrent))
        #expect(gauges.inProgress(accountID: "a") == 2)
    }

    @Test func emergencyCallsAreCountedButNeverRefused() {
        let plan = Plan(name: "p", maxConcurrent: 0)
        var gauges = Gauges()
        #expect(gauges.admit(accountID: "a", plan: plan, at: now, exempt: true) == .admitted)
        #expect(gauges.inProgress(accountID: "a") == 1)
        #expect(gauges.admit(accountID: "a", plan: nil, at: now) == .admitted)
        gauges.release(accountID: "a")
        gauges.release(accountID: "a")
        gauges.release(accountID: "a")
        #expect(gauges.inProgress(accountID: "a") == 0)
    }

    @Test(arguments: [(Int64(0), 0), (1, 1), (60_000, 1), (60_001, 2), (-5, 0)])
    func minutesRoundUp(milliseconds: Int64, minutes: Int) {
        #expect(Charging.minutes(milliseconds) == minutes)
    }

    func record(answered: Bool, caller: String? = nil, apps: [CallRecord.AppLeg]) -> CallRecord {
        CallRecord(callID: "c", fromTag: "f", cseq: 1, callerNumber: "+33100000000", callerUserID: caller.map { _ in "u" },
                   callerAccountID: caller, dialled: "+33612345678", destination: "+33612345678", decision: .chain, accountID: "smith",
                   users: ["alice"], answeredUserID: answered ? "alice" : nil, apps: apps, startTime: now,
                   answerTime: answered ? now + 1_000 : nil, endTime: now + 91_000, sipCode: answered ? 200 : 486,
                   sipReason: answered ? "OK" : "Busy Here", disposition: answered ? .answered : .busy, hangupBy: .caller,
                   endReason: answered ? .bye : .final)
    }

    @Test func anAnsweredCallChargesItsAccountAndTicketsEachAppInItsPath() {
        let charges = Charging.charges(of: record(answered: true, apps: [
            CallRecord.AppLeg(appID: "screen", providerID: "screenco", subscriberID: "s1", sipCode: 200),
            CallRecord.AppLeg(appID: "rec", providerID: "recco", subscriberID: "alice@x", sipCode: nil),
        ]))
        #expect(charges.usage == UsageCharge(accountID: "smith", day: "2026-11-21", minutes: 2, billableMilliseconds: 90_000))
        #expect(charges.tickets.map(\.appID) == ["screen", "rec"])
        #expect(charges.tickets.map(\.units) == [2, 2])
        #expect(charges.tickets.allSatisfy { $0.durationMilliseconds == 90_000 && $0.userID == "alice" && $0.number == "+33612345678" })
    }

    @Test func anUnansweredCallChargesNothingButStillTicketsItsApps() {
        let charges = Charging.charges(of: record(answered: false, apps: [
            CallRecord.AppLeg(appID: "screen", providerID: "screenco", subscriberID: "s1", sipCode: 603),
        ]))
        #expect(charges.usage == nil)
        #expect(charges.tickets.map(\.units) == [0])
    }

    @Test func aCallAUserPlacesCountsAgainstTheCallersAccount() {
        let charges = Charging.charges(of: record(answered: true, caller: "jones", apps: []))
        #expect(charges.usage?.accountID == "jones")
        #expect(charges.tickets.isEmpty)
    }
}
