import Testing
import Registry
@testable import Billing

@Suite struct SettlementTests {
    let november = Month("2026-11")!

    func at(_ text: String) -> Int64 { Timestamp.milliseconds(rfc3339: text)! }

    func ticket(_ app: String, _ provider: String, _ start: String, units: Int, id: Int) -> ServiceTicket {
        var ticket = ServiceTicket(callID: "c\(id)", appID: app, providerID: provider, subscriberID: "s", number: "+33612345678", userID: "alice",
                                   accountID: "smith", startTime: at(start), durationMilliseconds: Int64(units) * 60_000, units: units)
        ticket.id = id
        return ticket
    }

    /// November 2026 (30 days) for one number: voicemail (VM Corp, 3.00 a month, 0.02 a minute) all
    /// month, call screening (ScreenCo, 1.00 a month, 0.05 a minute) from the 11th to the 20th, the
    /// number moving from Telco to Other Telco on the 16th, and a call of 31 October recorded late.
    var golden: SettlementHistory {
        var input = SettlementHistory()
        input.activations = [
            .init(number: "+33612345678", appID: "voicemail", providerID: "vmcorp", active: true, time: at("2026-10-20T09:00:00Z")),
            .init(number: "+33612345678", appID: "screen", providerID: "screenco", active: true, time: at("2026-11-11T12:00:00Z")),
            .init(number: "+33612345678", appID: "screen", providerID: "screenco", active: false, time: at("2026-11-20T08:00:00Z")),
        ]
        input.carriers = [.init(number: "+33612345678", from: "telco", to: "othertelco", time: at("2026-11-16T10:00:00Z"))]
        input.numbers = ["+33612345678": (accountID: "smith", carrier: "othertelco")]
        input.rates = ["vmcorp": .init(currency: "EUR", perMinute: 2, monthlyFee: 300), "screenco": .init(currency: "EUR", perMinute: 5, monthlyFee: 100),
                       "telco": .init(currency: "EUR", perMinute: 0, monthlyFee: 0)]
        input.tickets = [
            ticket("voicemail", "vmcorp", "2026-10-31T23:59:00Z", units: 1, id: 1),
            ticket("voicemail", "vmcorp", "2026-11-05T10:00:00Z", units: 3, id: 2),
            ticket("screen", "screenco", "2026-11-12T10:00:00Z", units: 2, id: 3),
            ticket("screen", "screenco", "2026-11-18T10:00:00Z", units: 4, id: 4),
        ]
        return input
    }

    @Test func aMonthWithTwoProvidersProratedActivationsAndACarrierSwitch() {
        let lines = Settlement.lines(november, golden)
        let rows = lines.map { "\($0.payerID) \($0.payeeID) \($0.appID) \($0.kind.rawValue) \($0.quantity)×\($0.unitPrice)=\($0.amount) \($0.currency) \($0.note)" }
        #expect(rows == [
            "othertelco screenco screen fee 5×100=17 EUR 5/30 days",
            "othertelco screenco screen usage 4×5=20 EUR ",
            "othertelco vmcorp voicemail fee 15×300=150 EUR 15/30 days",
            "telco screenco screen fee 5×100=17 EUR 5/30 days",
            "telco screenco screen usage 2×5=10 EUR ",
            "telco vmcorp voicemail fee 15×300=150 EUR 15/30 days",
            "telco vmcorp voicemail usage 4×2=8 EUR late calls of 2026-10",
        ])
        #expect(lines.allSatisfy { $0.period == "2026-11" && $0.number == "+33612345678" && $0.accountID == "smith" })
        // The same input, the same lines.
        #expect(Settlement.lines(november, golden) == lines)
    }

    /// November run in December, after the number moved on 3 December: Telco held it all November and
    /// pays for all of it, though the number's carrier now is Other Telco.
    @Test func aSwitchAfterTheMonthLeavesTheWholeMonthToTheOldCarrier() {
        var input = golden
        input.carriers = [.init(number: "+33612345678", from: "telco", to: "othertelco", time: at("2026-12-03T10:00:00Z"))]
        let lines = Settlement.lines(november, input)
        #expect(Set(lines.map(\.payerID)) == ["telco"])
        #expect(lines.first { $0.appID == "voicemail" && $0.kind == .fee }?.quantity == 30)
        // Without the switch in its history, the month would go to the carrier of today.
        input.carriers = []
        #expect(Set(Settlement.lines(november, input).map(\.payerID)) == ["othertelco"])
    }

    @Test func aWholeMonthIsTheWholeFeeAndAFinishedActivationNothing() {
        var input = golden
        input.carriers = []
        input.tickets = []
        let lines = Settlement.lines(november, input)
        #expect(lines.map(\.amount) == [33, 300])
        #expect(lines.last?.note == "")
        #expect(Settlement.lines(Month("2026-12")!, input).map(\.appID) == ["voicemail"])
    }

    @Test(arguments: [(300, 15, 30, 150), (100, 5, 30, 17), (100, 1, 31, 3), (1, 1, 2, 1), (0, 3, 30, 0)])
    func sharesRoundHalfUpInMinorUnits(amount: Int, part: Int, whole: Int, share: Int) {
        #expect(Settlement.roundedShare(amount, part, of: whole) == share)
    }

    @Test func monthsKnowTheirDays() {
        #expect(Month("2026-02")!.days == 28 && Month("2028-02")!.days == 29 && Month("2026-12")!.days == 31)
        #expect(Month("2026-12")!.next.description == "2027-01" && Month("2026-01")!.previous.description == "2025-12")
        #expect(Month(milliseconds: at("2026-11-30T23:59:59Z")) == november)
        #expect(november.start == at("2026-11-01T00:00:00Z") && november.end == at("2026-12-01T00:00:00Z"))
        #expect(Month("2026-13") == nil && Month("26-11") == nil && Month("2026-1") == nil)
    }

    // MARK: Trunks

    /// Calls out through Transit's trunk in November from the same number (its carrier moving from
    /// Telco to Other Telco on the 16th), plus two from a caller with no number of Tandem's. The deck:
    /// every destination 0.02 a minute, +44 0.05 (60/60), UK mobiles +447 0.12 (30/6) and 0.03 a call.
    var trunkMonth: SettlementHistory {
        var input = golden
        input.activations = []
        input.tickets = []
        input.rates["transit"] = .init(currency: "EUR", perMinute: 0, monthlyFee: 0)
        input.rates["nodeck"] = .init(currency: "GBP", perMinute: 0, monthlyFee: 0)
        input.trunkRates = ["transit": [
            TrunkRate(providerID: "transit", prefix: "", ratePerMinute: 2),
            TrunkRate(providerID: "transit", prefix: "+44", ratePerMinute: 5),
            TrunkRate(providerID: "transit", prefix: "+447", ratePerMinute: 12, connectFee: 3, minimum: 30, increment: 6),
        ]]
        let number = "+33612345678"
        input.trunkCalls = [
            .init(cdrID: 1, number: number, trunkID: "transit", destination: "+447700900123", startTime: at("2026-11-05T10:00:00Z"), billableMilliseconds: 10_000),
            .init(cdrID: 2, number: number, trunkID: "transit", destination: "+447700900124", startTime: at("2026-11-06T10:00:00Z"), billableMilliseconds: 31_200),
            .init(cdrID: 3, number: number, trunkID: "transit", destination: "+442079460000", startTime: at("2026-11-20T10:00:00Z"), billableMilliseconds: 61_000),
            .init(cdrID: 4, number: number, trunkID: "transit", destination: "+12025550100", startTime: at("2026-11-20T11:00:00Z"), billableMilliseconds: 59_001),
            // October was closed before this record arrived: it is settled with November, marked late.
            .init(cdrID: 5, number: number, trunkID: "transit", destination: "+447700900125", startTime: at("2026-10-31T23:50:00Z"), billableMilliseconds: 5_000),
            .init(cdrID: 6, number: "", trunkID: "transit", destination: "+441234567890", startTime: at("2026-11-21T10:00:00Z"), billableMilliseconds: 61_000),
            .init(cdrID: 7, number: "", trunkID: "nodeck", destination: "+3312345678", startTime: at("2026-11-21T10:00:00Z"), billableMilliseconds: 44_500),
        ]
        return input
    }

    @Test func trunkCallsArePricedByTheLongestPrefixInIncrementsPerCarrier() {
        let lines = Settlement.lines(november, trunkMonth)
        let rows = lines.map {
            "\($0.payerID) \($0.payeeID) \($0.number) \($0.kind.rawValue) \($0.destination) \($0.quantity)×\($0.unitPrice)=\($0.amount) \($0.currency) \($0.note)"
        }
        #expect(rows == [
            "- nodeck  outbound - 45×0=0 GBP 1 call, no rate matches",
            "- transit  outbound +44 120×5=10 EUR 1 call at 60/60",
            "othertelco transit +33612345678 outbound  60×2=2 EUR 1 call at 60/60",
            "othertelco transit +33612345678 outbound +44 120×5=10 EUR 1 call at 60/60",
            "telco transit +33612345678 connect +447 3×3=9 EUR late calls of 2026-10",
            "telco transit +33612345678 outbound +447 96×12=19 EUR 3 calls at 30/6; late calls of 2026-10",
        ])
        #expect(lines.allSatisfy { $0.appID == "" && $0.period == "2026-11" })
        #expect(lines.filter { $0.number == "+33612345678" }.allSatisfy { $0.accountID == "smith" })
        #expect(Settlement.lines(november, trunkMonth) == lines)
        // App lines and trunk lines of the same month sit side by side.
        var both = trunkMonth
        both.activations = golden.activations
        both.tickets = golden.tickets
        #expect(Settlement.lines(november, both).count == lines.count + 7)
    }

    @Test(arguments: [
        (10_000, 30, 6, 30), (31_200, 30, 6, 36), (36_000, 30, 6, 36), (59_001, 60, 60, 60), (60_001, 60, 60, 120),
        (1, 1, 1, 1), (0, 0, 1, 0), (0, 60, 60, 60), (1_000, 0, 1, 1), (1_001, 0, 1, 2),
    ] as [(Int64, Int, Int, Int)])
    func callsAreChargedInWholeIncrementsAndAtLeastTheMinimum(milliseconds: Int64, minimum: Int, increment: Int, seconds: Int) {
        #expect(RateDeck.billedSeconds(milliseconds, minimum: minimum, increment: increment) == seconds)
    }

    @Test func theLongestPrefixPricesADestination() {
        let deck = RateDeck([TrunkRate(providerID: "t", prefix: "+4", ratePerMinute: 1), TrunkRate(providerID: "t", prefix: "+447", ratePerMinute: 3),
                             TrunkRate(providerID: "t", prefix: "+44", ratePerMinute: 2), TrunkRate(providerID: "t", prefix: "112", ratePerMinute: 0)])
        #expect(deck.rate(for: "+447700900123")?.prefix == "+447")
        #expect(deck.rate(for: "+441234")?.prefix == "+44")
        #expect(deck.rate(for: "+49301234")?.prefix == "+4")
        #expect(deck.rate(for: "+33612345678") == nil)
        #expect(deck.rate(for: "112")?.prefix == "112")
        #expect(deck.rate(for: "+4")?.prefix == "+4")
        #expect(RateDeck([]).rate(for: "+44") == nil)
        #expect(RateDeck([TrunkRate(providerID: "t", prefix: "", ratePerMinute: 1)]).rate(for: "+1")?.prefix == "")
    }
}
