import JSON
import Testing
@testable import Registry
@testable import RegistryModel
@testable import Routing

/// Rules held to a calendar: dates, days of the month, weeks of the month, days of the year, in the
/// account's time zone and across daylight-saving changes.
@Suite struct CalendarRuleTests {
    /// Days since the epoch, counted by `Moment.utc` (a year-by-year count, not the algorithm under test).
    static func day(_ date: String) -> Int64 { Moment.utc(date + "T00:00Z") / 86_400_000 }

    @Test(arguments: ["1970-01-01", "1969-12-31", "2000-02-29", "2026-03-29", "2026-12-31", "2027-01-01", "2100-03-01", "2400-02-29"])
    func civilDatesRoundTrip(_ text: String) throws {
        let date = try #require(CivilDate(parsing: text))
        #expect(date.description == text)
        if text >= "1970" { #expect(date.days == Self.day(text)) }
        #expect(CivilDate(days: date.days) == date)
    }

    @Test(arguments: ["2026-02-29", "2026-13-01", "2026-04-31", "2026-1-01", "26-01-01", "2026-01-01x", "2026/01/01", ""])
    func impossibleDatesAreRefused(_ text: String) {
        #expect(CivilDate(parsing: text) == nil)
    }

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var rule: Availability.Rule
        var at: String
        var minute: Int
        var holds: Bool
        var description: String { "\(name) at \(at) minute \(minute)" }
    }

    static let allDays: Set<Int> = Set(1...7)
    static let christmas = Availability.Rule(days: allDays, start: 0, end: 1440, mode: "m", yearDays: [1225])
    static let holiday = Availability.Rule(days: allDays, start: 0, end: 1440, mode: "m", dates: [day("2026-12-24")...day("2027-01-03")])
    static let payday = Availability.Rule(days: allDays, start: 540, end: 1020, mode: "m", monthDays: [-1])
    static let firstMonday = Availability.Rule(days: [1], start: 540, end: 600, mode: "m", monthWeeks: [1])
    static let lastFriday = Availability.Rule(days: [5], start: 1320, end: 120, mode: "m", monthWeeks: [-1])
    static let leapDay = Availability.Rule(days: allDays, start: 0, end: 1440, mode: "m", yearDays: [229])

    static let cases: [Case] = [
        Case(name: "yearly", rule: christmas, at: "2026-12-25", minute: 0, holds: true),
        Case(name: "yearly", rule: christmas, at: "2031-12-25", minute: 1439, holds: true),
        Case(name: "yearly", rule: christmas, at: "2026-12-26", minute: 0, holds: false),
        Case(name: "dated range", rule: holiday, at: "2026-12-24", minute: 0, holds: true),
        Case(name: "dated range", rule: holiday, at: "2027-01-03", minute: 1439, holds: true),
        Case(name: "dated range", rule: holiday, at: "2027-01-04", minute: 0, holds: false),
        Case(name: "dated range", rule: holiday, at: "2026-12-23", minute: 1439, holds: false),
        // The last day of the month, whatever its length.
        Case(name: "last day", rule: payday, at: "2026-02-28", minute: 600, holds: true),
        Case(name: "last day", rule: payday, at: "2028-02-28", minute: 600, holds: false),
        Case(name: "last day", rule: payday, at: "2028-02-29", minute: 600, holds: true),
        Case(name: "last day", rule: payday, at: "2026-04-30", minute: 600, holds: true),
        Case(name: "last day", rule: payday, at: "2026-04-30", minute: 1020, holds: false),
        // 2026-12-07 is the first Monday of December; 2026-12-14 the second.
        Case(name: "first Monday", rule: firstMonday, at: "2026-12-07", minute: 540, holds: true),
        Case(name: "first Monday", rule: firstMonday, at: "2026-12-14", minute: 540, holds: false),
        Case(name: "first Monday", rule: firstMonday, at: "2026-12-08", minute: 540, holds: false),
        // An overnight window of the last Friday (2026-12-25) runs into Saturday the 26th; the Saturday
        // after the second-to-last Friday does not.
        Case(name: "last Friday night", rule: lastFriday, at: "2026-12-25", minute: 1400, holds: true),
        Case(name: "last Friday night", rule: lastFriday, at: "2026-12-26", minute: 60, holds: true),
        Case(name: "last Friday night", rule: lastFriday, at: "2026-12-26", minute: 120, holds: false),
        Case(name: "last Friday night", rule: lastFriday, at: "2026-12-19", minute: 60, holds: false),
        Case(name: "last Friday night", rule: lastFriday, at: "2026-12-18", minute: 1400, holds: false),
        Case(name: "leap day", rule: leapDay, at: "2028-02-29", minute: 0, holds: true),
        Case(name: "leap day", rule: leapDay, at: "2027-03-01", minute: 0, holds: false),
    ]

    @Test(arguments: cases)
    func calendarWindow(_ test: Case) {
        let local = LocalTime(day: Self.day(test.at), minute: test.minute)
        #expect(test.rule.contains(local) == test.holds)
    }

    /// The rule is read in the account's zone: Christmas Day in Sydney starts at 13:00Z the day before,
    /// and 25 December in Paris lasts 24 hours although 29 March 2026 lasted 23.
    @Test func datesAreLocalToTheAccount() {
        let rule = Self.christmas
        #expect(rule.contains(LocalTime.at(Moment.utc("2026-12-24T13:00Z"), zone: "Australia/Sydney")))
        #expect(!rule.contains(LocalTime.at(Moment.utc("2026-12-24T12:59Z"), zone: "Australia/Sydney")))
        #expect(rule.contains(LocalTime.at(Moment.utc("2026-12-25T22:59Z"), zone: "Europe/Paris")))
        #expect(!rule.contains(LocalTime.at(Moment.utc("2026-12-25T23:00Z"), zone: "Europe/Paris")))
        let daylightSaving = Availability.Rule(days: Self.allDays, start: 0, end: 1440, mode: "m", dates: [Self.day("2026-03-29")...Self.day("2026-03-29")])
        #expect(daylightSaving.contains(LocalTime.at(Moment.utc("2026-03-28T23:00Z"), zone: "Europe/Paris")))
        #expect(daylightSaving.contains(LocalTime.at(Moment.utc("2026-03-29T21:59Z"), zone: "Europe/Paris")))
        #expect(!daylightSaving.contains(LocalTime.at(Moment.utc("2026-03-29T22:00Z"), zone: "Europe/Paris")))
    }

    /// A holiday rule listed first wins over the weekly working hours for that day only.
    @Test func aDatedRuleComesBeforeTheWeek() throws {
        let definition: JSONValue = try JSONValue.parse("""
            {"modes": [{"name": "work", "state": "available"}, {"name": "off", "state": "not_available"}],
             "profiles": [{"name": "office", "default_mode": "off", "rules": [
                {"dates": ["2026-12-24..2027-01-01"], "mode": "off"},
                {"yearly": ["05-01"], "mode": "off"},
                {"days": ["mon-fri"], "from": "09:00", "to": "17:00", "mode": "work"}]}]}
            """)
        let availability = try AvailabilityDefinition.parse(definition, userID: "bob")
        func mode(_ utc: String) -> String { availability.scheduledMode(now: 0, local: LocalTime.at(Moment.utc(utc), zone: "Europe/Paris")).mode.name }
        #expect(mode("2026-12-23T09:00Z") == "work")
        #expect(mode("2026-12-24T09:00Z") == "off")
        #expect(mode("2027-01-04T09:00Z") == "work")
        #expect(mode("2027-05-03T09:00Z") == "work")
        #expect(mode("2028-05-01T09:00Z") == "off")
        let reasons = availability.scheduledMode(now: 0, local: LocalTime.at(Moment.utc("2026-12-24T09:00Z"), zone: "Europe/Paris")).reasons
        #expect(reasons == ["profile 'office' rule 1 (2026-12-24..2027-01-01 00:00–24:00 → off) holds at Thu 2026-12-24 10:00: mode 'off'"])
        // The stored form reads back to the same rules.
        #expect(try AvailabilityDefinition.parse(AvailabilityDefinition.json(availability), userID: "bob").profiles == availability.profiles)
    }

    struct Bad: Sendable, CustomStringConvertible {
        var rule: String
        var field: String
        var description: String { rule }
    }

    static let bad: [Bad] = [
        Bad(rule: #"{"mode": "m"}"#, field: "profiles[0].rules[0].days"),
        Bad(rule: #"{"mode": "m", "dates": ["2026-02-30"]}"#, field: "profiles[0].rules[0].dates[0]"),
        Bad(rule: #"{"mode": "m", "dates": ["2026-03-02..2026-03-01"]}"#, field: "profiles[0].rules[0].dates[0]"),
        Bad(rule: #"{"mode": "m", "monthdays": [0]}"#, field: "profiles[0].rules[0].monthdays[0]"),
        Bad(rule: #"{"mode": "m", "monthdays": ["1"]}"#, field: "profiles[0].rules[0].monthdays[0]"),
        Bad(rule: #"{"mode": "m", "days": ["mon"], "month_weeks": [6]}"#, field: "profiles[0].rules[0].month_weeks[0]"),
        Bad(rule: #"{"mode": "m", "yearly": ["02-30"]}"#, field: "profiles[0].rules[0].yearly[0]"),
        Bad(rule: #"{"mode": "m", "yearly": ["12-25"], "from": "09:00"}"#, field: "profiles[0].rules[0].to"),
        Bad(rule: #"{"mode": "m", "yearly": ["12-25"], "weekly": true}"#, field: "profiles[0].rules[0].weekly"),
    ]

    @Test(arguments: bad)
    func badRulesNameTheField(_ test: Bad) throws {
        let definition = try JSONValue.parse(#"{"modes": [{"name": "m", "state": "available"}], "profiles": [{"name": "p", "rules": [\#(test.rule)]}]}"#)
        #expect {
            try AvailabilityDefinition.parse(definition, userID: "bob")
        } throws: { error in
            guard let error = error as? RegistryError else { return false }
            return error.kind == .invalid && error.field == test.field
        }
    }
}
