import Foundation
import Testing
@testable import Registry
@testable import Routing

@Suite struct AvailabilityTests {
    struct Instant: Sendable, CustomStringConvertible {
        var utc: String
        var zone: String
        var local: String
        var description: String { "\(utc) in \(zone)" }
    }

    /// Local wall-clock time across the 2026 daylight-saving changes (EU: last Sundays of March and
    /// October at 01:00Z; US: second Sunday of March, first of November, 02:00 local).
    static let instants: [Instant] = [
        Instant(utc: "2026-03-29T00:59Z", zone: "Europe/Paris", local: "Sun 2026-03-29 01:59"),
        Instant(utc: "2026-03-29T01:00Z", zone: "Europe/Paris", local: "Sun 2026-03-29 03:00"),
        Instant(utc: "2026-10-25T00:59Z", zone: "Europe/Paris", local: "Sun 2026-10-25 02:59"),
        Instant(utc: "2026-10-25T01:00Z", zone: "Europe/Paris", local: "Sun 2026-10-25 02:00"),
        Instant(utc: "2026-11-23T09:00Z", zone: "Europe/Paris", local: "Mon 2026-11-23 10:00"),
        Instant(utc: "2026-11-22T23:30Z", zone: "Europe/Paris", local: "Mon 2026-11-23 00:30"),
        Instant(utc: "2026-11-23T04:30Z", zone: "America/New_York", local: "Sun 2026-11-22 23:30"),
        Instant(utc: "2026-03-08T06:59Z", zone: "America/New_York", local: "Sun 2026-03-08 01:59"),
        Instant(utc: "2026-03-08T07:00Z", zone: "America/New_York", local: "Sun 2026-03-08 03:00"),
        Instant(utc: "2026-11-01T05:59Z", zone: "America/New_York", local: "Sun 2026-11-01 01:59"),
        Instant(utc: "2026-11-01T06:00Z", zone: "America/New_York", local: "Sun 2026-11-01 01:00"),
        Instant(utc: "2026-06-15T12:00Z", zone: "Asia/Kolkata", local: "Mon 2026-06-15 17:30"),
        Instant(utc: "2026-06-15T12:00Z", zone: "UTC", local: "Mon 2026-06-15 12:00"),
        Instant(utc: "2026-06-15T12:00Z", zone: "Not/AZone", local: "Mon 2026-06-15 12:00"),
        Instant(utc: "2026-12-31T23:00Z", zone: "Australia/Sydney", local: "Fri 2027-01-01 10:00"),
    ]

    @Test(arguments: instants)
    func wallClock(_ instant: Instant) {
        #expect(LocalTime.at(Moment.utc(instant.utc), zone: instant.zone).description == instant.local)
    }

    struct Window: Sendable, CustomStringConvertible {
        var days: Set<Int>
        var start: Int
        var end: Int
        var at: LocalTime
        var holds: Bool
        var description: String { "\(days.sorted()) \(start)-\(end) at \(at)" }
    }

    static let weekdays: Set<Int> = [1, 2, 3, 4, 5]
    static let windows: [Window] = [
        // Weekdays 09:00–17:30: both edges, the minute before, the minute after, the weekend.
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 1, minute: 539), holds: false),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 1, minute: 540), holds: true),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 3, minute: 800), holds: true),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 5, minute: 1049), holds: true),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 5, minute: 1050), holds: false),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 6, minute: 600), holds: false),
        Window(days: weekdays, start: 540, end: 1050, at: LocalTime(weekday: 7, minute: 600), holds: false),
        // Nights 22:00–07:00 starting Friday and Saturday: past midnight into the next day.
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 5, minute: 1319), holds: false),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 5, minute: 1320), holds: true),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 6, minute: 0), holds: true),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 6, minute: 419), holds: true),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 6, minute: 420), holds: false),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 7, minute: 100), holds: true),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 7, minute: 1320), holds: false),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 1, minute: 100), holds: false),
        Window(days: [5, 6], start: 1320, end: 420, at: LocalTime(weekday: 4, minute: 1400), holds: false),
        // Sunday night into Monday wraps the week.
        Window(days: [7], start: 1380, end: 60, at: LocalTime(weekday: 1, minute: 30), holds: true),
        Window(days: [7], start: 1380, end: 60, at: LocalTime(weekday: 1, minute: 60), holds: false),
        // Whole days.
        Window(days: [6, 7], start: 0, end: 1440, at: LocalTime(weekday: 6, minute: 0), holds: true),
        Window(days: [6, 7], start: 0, end: 1440, at: LocalTime(weekday: 7, minute: 1439), holds: true),
        Window(days: [6, 7], start: 0, end: 1440, at: LocalTime(weekday: 1, minute: 0), holds: false),
        Window(days: [3], start: 0, end: 0, at: LocalTime(weekday: 3, minute: 720), holds: true),
    ]

    /// The offset cache answers as the time zone database does, in whatever order instants come:
    /// around both 2026 changes in Paris and New York, forwards, backwards and scattered.
    @Test(arguments: ["Europe/Paris", "America/New_York", "Australia/Sydney", "UTC"])
    func offsetsMatchTheTimeZoneDatabase(_ zone: String) {
        let timeZone = TimeZone(identifier: zone)!
        let parisSpring: Int64 = 1_774_746_000 // 2026-03-29T01:00:00Z
        let newYorkFall: Int64 = 1_793_512_800 // 2026-11-01T06:00:00Z
        var instants: [Int64] = []
        for edge in [parisSpring, newYorkFall] {
            instants += [edge - 1, edge, edge + 1, edge - 1, edge - 3600, edge + 3600, edge]
        }
        var seed: UInt64 = 7
        for _ in 0..<500 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            instants.append(1_767_225_600 + Int64(seed >> 40) % (366 * 86_400)) // across 2026
        }
        for seconds in instants + instants.reversed() {
            let expected = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
            #expect(LocalTime.offset(zone, at: seconds) == expected, "\(zone) at \(seconds)")
        }
    }

    @Test(arguments: windows)
    func weeklyWindow(_ window: Window) {
        let rule = Availability.Rule(days: window.days, start: window.start, end: window.end, mode: "m")
        #expect(rule.contains(window.at) == window.holds)
    }

    static func worker() -> Availability {
        var availability = Availability.standard(userID: "bob")
        availability.modes = [
            Availability.Mode(name: "available", state: .available),
            Availability.Mode(name: "work", state: .available, allow: ["+33699999999", "alice"]),
            Availability.Mode(name: "meeting", state: .notAvailable, deny: ["+33688888888"]),
            Availability.Mode(name: "home", state: .notAvailable),
            Availability.Mode(name: "travel", state: .transfer, target: "+33611111111"),
            Availability.Mode(name: "ghost", state: .hidden),
        ]
        availability.profiles = [
            Availability.Profile(name: "professional", defaultMode: "home", rules: [
                Availability.Rule(days: weekdays, start: 600, end: 660, mode: "meeting"),
                Availability.Rule(days: weekdays, start: 540, end: 1050, mode: "work"),
            ]),
            Availability.Profile(name: "personal", defaultMode: "available", rules: [
                Availability.Rule(days: [6, 7], start: 0, end: 1440, mode: "ghost"),
            ]),
        ]
        availability.activeProfile = "professional"
        return availability
    }

    struct ModeCase: Sendable, CustomStringConvertible {
        var local: LocalTime
        var profile: String
        var caller: CallerIdentity
        var override: Availability.Override?
        var mode: String
        var description: String { "\(profile) at \(local) for \(caller.description) → \(mode)" }
    }

    static let boss = CallerIdentity(number: "+33699999999")
    static let friend = CallerIdentity(number: "+33688888888")
    static let stranger = CallerIdentity(number: "+33677777777")
    static let alice = CallerIdentity(number: "+33611111111", userID: "alice")
    static let now = Moment.mondayMorning

    static let modeCases: [ModeCase] = [
        // The first rule that holds wins: 10:00–11:00 is a meeting inside the working day.
        ModeCase(local: LocalTime(weekday: 1, minute: 630), profile: "professional", caller: stranger, mode: "meeting"),
        ModeCase(local: LocalTime(weekday: 1, minute: 630), profile: "professional", caller: boss, mode: "meeting"),
        // The meeting excludes the friend: they get the profile's default.
        ModeCase(local: LocalTime(weekday: 1, minute: 630), profile: "professional", caller: friend, mode: "home"),
        // Work applies only to its allow list (by number or by user id).
        ModeCase(local: LocalTime(weekday: 2, minute: 900), profile: "professional", caller: boss, mode: "work"),
        ModeCase(local: LocalTime(weekday: 2, minute: 900), profile: "professional", caller: alice, mode: "work"),
        ModeCase(local: LocalTime(weekday: 2, minute: 900), profile: "professional", caller: stranger, mode: "home"),
        ModeCase(local: LocalTime(weekday: 2, minute: 900), profile: "professional", caller: CallerIdentity(), mode: "home"),
        // Outside every window: the default.
        ModeCase(local: LocalTime(weekday: 2, minute: 1100), profile: "professional", caller: boss, mode: "home"),
        ModeCase(local: LocalTime(weekday: 6, minute: 600), profile: "professional", caller: boss, mode: "home"),
        // Another profile, other rules.
        ModeCase(local: LocalTime(weekday: 6, minute: 600), profile: "personal", caller: stranger, mode: "ghost"),
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "personal", caller: stranger, mode: "available"),
        // An override wins until it expires; an expired one is ignored.
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "personal", caller: stranger,
                 override: Availability.Override(mode: "travel", until: now + 1), mode: "travel"),
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "personal", caller: stranger,
                 override: Availability.Override(mode: "travel", until: now), mode: "available"),
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "personal", caller: stranger,
                 override: Availability.Override(mode: "travel", until: nil), mode: "travel"),
        // An override's mode still applies to its own lists.
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "professional", caller: friend,
                 override: Availability.Override(mode: "meeting", until: nil), mode: "home"),
        ModeCase(local: LocalTime(weekday: 2, minute: 600), profile: "professional", caller: boss,
                 override: Availability.Override(mode: "meeting", until: nil), mode: "meeting"),
        // A profile that is not defined falls back to the first.
        ModeCase(local: LocalTime(weekday: 1, minute: 630), profile: "vanished", caller: stranger, mode: "meeting"),
    ]

    @Test(arguments: modeCases)
    func modeForCaller(_ test: ModeCase) {
        var availability = Self.worker()
        availability.activeProfile = test.profile
        availability.override = test.override
        let choice = availability.mode(for: test.caller, now: Self.now, local: test.local)
        #expect(choice.mode.name == test.mode, "\(choice.reasons)")
        #expect(!choice.reasons.isEmpty)
    }

    /// `list:NAME` entries match the members the registry resolved into `lists`.
    @Test func contactListsInEntries() {
        var availability = Self.worker()
        availability.modes[1].allow = ["list:colleagues"]
        availability.sharing = .authorised
        availability.authorised = ["list:friends"]
        availability.lists = ["colleagues": ["+33655555555", "carol"], "friends": ["dave"]]
        let work = LocalTime(weekday: 2, minute: 900)
        #expect(availability.mode(for: CallerIdentity(number: "+33655555555"), now: Self.now, local: work).mode.name == "work")
        #expect(availability.mode(for: CallerIdentity(userID: "carol"), now: Self.now, local: work).mode.name == "work")
        #expect(availability.mode(for: CallerIdentity(number: "+33699999999"), now: Self.now, local: work).mode.name == "home")
        #expect(availability.connectability(for: CallerIdentity(userID: "dave"), registered: true, now: Self.now, local: work).0 == .notConnectable)
        #expect(availability.connectability(for: CallerIdentity(userID: "carol"), registered: true, now: Self.now, local: work).0 == .subjectToAuthorisation)
        // A list the registry did not resolve (deleted meanwhile) matches nobody.
        availability.lists = [:]
        #expect(availability.mode(for: CallerIdentity(userID: "carol"), now: Self.now, local: work).mode.name == "home")
    }

    struct StateCase: Sendable, CustomStringConvertible {
        var mode: String
        var registered: Bool
        var asker: CallerIdentity?
        var sharing: Availability.Sharing
        var state: ConnectabilityState
        var description: String { "\(mode) registered=\(registered) sharing=\(sharing) asker=\(asker?.description ?? "operator") → \(state)" }
    }

    static let stateCases: [StateCase] = {
        var cases: [StateCase] = []
        let expected: [(String, Bool, ConnectabilityState)] = [
            ("available", true, .connectable), ("available", false, .unknown),
            ("home", true, .notConnectable), ("home", false, .notConnectable),
            ("travel", true, .inTransfer), ("travel", false, .inTransfer),
            ("ghost", true, .unknown), ("ghost", false, .unknown),
        ]
        for (mode, registered, state) in expected {
            // Shared with everyone: every asker (and the operator) sees the state.
            for asker in [nil, stranger, alice] {
                cases.append(StateCase(mode: mode, registered: registered, asker: asker, sharing: .everyone, state: state))
            }
            // Shared with the authorised only: the operator, the user and the authorised see it.
            cases.append(StateCase(mode: mode, registered: registered, asker: nil, sharing: .authorised, state: state))
            cases.append(StateCase(mode: mode, registered: registered, asker: alice, sharing: .authorised, state: state))
            cases.append(StateCase(mode: mode, registered: registered, asker: CallerIdentity(userID: "bob"), sharing: .authorised, state: state))
            cases.append(StateCase(mode: mode, registered: registered, asker: stranger, sharing: .authorised, state: .subjectToAuthorisation))
            cases.append(StateCase(mode: mode, registered: registered, asker: boss, sharing: .authorised, state: .subjectToAuthorisation))
        }
        return cases
    }()

    @Test(arguments: stateCases)
    func connectability(_ test: StateCase) {
        var availability = Self.worker()
        availability.override = Availability.Override(mode: test.mode, until: nil)
        availability.sharing = test.sharing
        availability.authorised = ["alice"]
        let (state, reasons) = availability.connectability(for: test.asker, registered: test.registered, now: Self.now,
                                                           local: LocalTime(weekday: 1, minute: 0))
        #expect(state == test.state)
        #expect(!reasons.isEmpty)
    }
}
