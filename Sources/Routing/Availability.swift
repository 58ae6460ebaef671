import Foundation
import RegistryModel
import Synchronization

/// A moment as a wall clock in some time zone shows it, to the minute.
public struct LocalTime: Sendable, Equatable, CustomStringConvertible {
    /// 1 = Monday … 7 = Sunday (ISO 8601).
    public var weekday: Int
    /// Minutes after local midnight.
    public var minute: Int
    /// The local date, as days since 1970-01-01.
    public var day: Int64

    /// A moment on `day` (days since 1970-01-01, local).
    public init(day: Int64, minute: Int) {
        self.day = day
        self.minute = minute
        // 1970-01-01 was a Thursday (ISO weekday 4).
        weekday = Int((day + 3).modulo(7)) + 1
    }

    /// A moment on the `weekday` of the week of 1970-01-01 (for rules that name weekdays only).
    public init(weekday: Int, minute: Int) {
        self.init(day: Int64(weekday - 4), minute: minute)
    }

    /// A moment on `date`.
    public init(date: CivilDate, minute: Int) {
        self.init(day: date.days, minute: minute)
    }

    public var date: CivilDate { CivilDate(days: day) }

    /// Per zone, the spans of time over which its offset is known not to change. Asking the time
    /// zone database costs far more than the rest of a decision; calls come at "now", which stays
    /// inside one span for months.
    struct Zone {
        var timeZone: TimeZone
        /// `[from, until)` seconds since the epoch with one offset; a few, the latest first.
        var spans: [(from: Int64, until: Int64, offset: Int64)] = []
    }
    static let zones = Mutex<[String: Zone]>([:])

    /// The UTC offset of `zone` at `seconds`, in seconds.
    static func offset(_ zone: String, at seconds: Int64) -> Int64 {
        zones.withLock { cache -> Int64 in
            var entry = cache[zone] ?? Zone(timeZone: TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")!)
            if let span = entry.spans.first(where: { $0.from <= seconds && seconds < $0.until }) { return span.offset }
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            let offset = Int64(entry.timeZone.secondsFromGMT(for: date))
            // The offset holds from this instant to the zone's next transition; a span that ends at
            // the same transition only grows back to cover it.
            let until = entry.timeZone.nextDaylightSavingTimeTransition(after: date).map { Int64($0.timeIntervalSince1970.rounded(.up)) } ?? .max
            if let index = entry.spans.firstIndex(where: { $0.until == until && $0.offset == offset }) {
                entry.spans[index].from = min(entry.spans[index].from, seconds)
            } else {
                entry.spans.insert((seconds, until, offset), at: 0)
                if entry.spans.count > 4 { entry.spans.removeLast() }
            }
            if cache.count < 1024 || cache[zone] != nil { cache[zone] = entry }
            return offset
        }
    }

    /// `milliseconds` since the epoch in the IANA `zone` (UTC when unknown): the offset in force at
    /// that instant, so windows follow daylight-saving changes.
    public static func at(_ milliseconds: Int64, zone: String) -> LocalTime {
        let seconds = milliseconds.floorDivided(by: 1000)
        let offset = offset(zone, at: seconds)
        let local = seconds + offset
        return LocalTime(day: local.floorDivided(by: 86_400), minute: Int(local.modulo(86_400) / 60))
    }

    static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    public var description: String {
        let hours = minute / 60, minutes = minute % 60
        return "\(Self.dayNames[weekday - 1]) \(date) \(hours < 10 ? "0" : "")\(hours):\(minutes < 10 ? "0" : "")\(minutes)"
    }
}

extension Int64 {
    func modulo(_ divisor: Int64) -> Int64 {
        let rest = self % divisor
        return rest < 0 ? rest + divisor : rest
    }
}

/// Who is calling, as availability lists name callers: an E.164 number and, for Tandem's own users,
/// their user id.
public struct CallerIdentity: Sendable, Equatable {
    public var number: String?
    public var userID: String?

    public init(number: String? = nil, userID: String? = nil) {
        self.number = number
        self.userID = userID
    }

    /// Whether an entry names this caller: their number, their user id, or a contact list
    /// (`list:NAME`, resolved in `lists`) holding either.
    public func isListed(in entries: [String], lists: [String: Set<String>] = [:]) -> Bool {
        entries.contains { entry in
            if entry == number || entry == userID { return true }
            guard entry.hasPrefix(ContactList.referencePrefix), let members = lists[String(entry.dropFirst(ContactList.referencePrefix.count))] else {
                return false
            }
            return number.map(members.contains) == true || userID.map(members.contains) == true
        }
    }

    public var description: String {
        switch (number, userID) {
        case (let number?, let user?): "\(number) (user \(user))"
        case (let number?, nil): number
        case (nil, let user?): "user \(user)"
        case (nil, nil): "an anonymous caller"
        }
    }
}

/// Whether a user can be called now, as the user lets others see it.
public enum ConnectabilityState: String, Sendable, CaseIterable {
    case connectable
    case notConnectable = "not_connectable"
    /// The user shares their state only with authorised contacts, and the asker is not one.
    case subjectToAuthorisation = "subject_to_authorisation"
    case inTransfer = "in_transfer"
    /// Not registered with Tandem, or hidden.
    case unknown
}

/// Which mode applies, and why. The why is kept as values and put into words only when read
/// (`route.explain`, debug logs), not on every call.
public struct ModeChoice: Sendable {
    public var mode: Availability.Mode
    /// Why the scheduled mode is in force, and why the caller fell back to the default (no array:
    /// a decision allocates nothing for its reasons).
    var cause: Cause
    var exclusion: Cause?

    enum Cause: Sendable {
        case override(mode: String, until: Int64?)
        case rule(profile: String, index: Int, rule: Availability.Rule, local: LocalTime)
        case fallback(profile: String, mode: String, local: LocalTime)
        case excluded(mode: String, fallback: String, caller: CallerIdentity, denied: Bool)

        var text: String {
            switch self {
            case .override(let mode, let until):
                "override sets mode '\(mode)'" + (until.map { " until \(Timestamp.rfc3339(milliseconds: $0))" } ?? " until cleared")
            case .rule(let profile, let index, let rule, let local):
                "profile '\(profile)' rule \(index + 1) (\(rule.summary)) holds at \(local): mode '\(rule.mode)'"
            case .fallback(let profile, let mode, let local):
                "no rule of profile '\(profile)' holds at \(local): default mode '\(mode)'"
            case .excluded(let mode, let fallback, let caller, let denied):
                denied ? "mode '\(mode)' excludes \(caller.description): default mode '\(fallback)'"
                       : "mode '\(mode)' applies only to its allow list: default mode '\(fallback)' for \(caller.description)"
            }
        }
    }

    public var reasons: [String] { [cause.text] + (exclusion.map { [$0.text] } ?? []) }
}

extension Availability {
    /// The mode in force at `now` regardless of caller: an unexpired override, else the first rule of
    /// the active profile whose weekly window contains the local time, else the profile's default.
    public func scheduledMode(now: Int64, local: LocalTime) -> ModeChoice {
        if let override, override.until.map({ $0 > now }) ?? true, let mode = mode(named: override.mode) {
            return ModeChoice(mode: mode, cause: .override(mode: mode.name, until: override.until))
        }
        let profile = self.profile ?? profiles.first ?? Profile(name: "default")
        for (index, rule) in profile.rules.enumerated() where rule.contains(local) {
            if let mode = mode(named: rule.mode) {
                return ModeChoice(mode: mode, cause: .rule(profile: profile.name, index: index, rule: rule, local: local))
            }
        }
        let fallback = mode(named: profile.defaultMode) ?? Mode(name: "available", state: .available)
        return ModeChoice(mode: fallback, cause: .fallback(profile: profile.name, mode: fallback.name, local: local))
    }

    /// The mode that governs a call from `caller`: the scheduled mode when it applies to them (its
    /// allow list names them or is empty, and its deny list does not), else the profile's default.
    public func mode(for caller: CallerIdentity, now: Int64, local: LocalTime) -> ModeChoice {
        var choice = scheduledMode(now: now, local: local)
        let mode = choice.mode
        let allowed = mode.allow.isEmpty || caller.isListed(in: mode.allow, lists: lists)
        let denied = caller.isListed(in: mode.deny, lists: lists)
        if allowed && !denied { return choice }
        let profile = self.profile ?? profiles.first ?? Profile(name: "default")
        let fallback = self.mode(named: profile.defaultMode) ?? Mode(name: "available", state: .available)
        choice.exclusion = .excluded(mode: mode.name, fallback: fallback.name, caller: caller, denied: denied)
        choice.mode = fallback
        return choice
    }

    /// Connectability as `asker` may see it (RFC-free, Tandem's own model): an unauthorised asker of a
    /// user who shares only with authorised contacts learns nothing more than that.
    public func connectability(for asker: CallerIdentity?, registered: Bool, now: Int64, local: LocalTime) -> (ConnectabilityState, [String]) {
        let (state, choice) = decideConnectability(for: asker, registered: registered, now: now, local: local)
        guard let choice else { return (state, ["the user shares their state only with authorised contacts"]) }
        var reasons = choice.reasons
        switch state {
        case .unknown where choice.mode.state == .hidden: reasons.append("mode '\(choice.mode.name)' is hidden")
        case .inTransfer: reasons.append("calls are transferred to \(choice.mode.target ?? "?")")
        case .notConnectable: reasons.append("mode '\(choice.mode.name)' is not available")
        case .connectable: reasons.append("available with a live registration")
        case .unknown: reasons.append("available but no device is registered")
        case .subjectToAuthorisation: break
        }
        return (state, reasons)
    }

    /// The state alone, without putting the reasons into words: what the presence server asks for
    /// every watcher of a changed user.
    public func connectabilityState(for asker: CallerIdentity?, registered: Bool, now: Int64, local: LocalTime) -> ConnectabilityState {
        decideConnectability(for: asker, registered: registered, now: now, local: local).0
    }

    private func decideConnectability(for asker: CallerIdentity?, registered: Bool, now: Int64, local: LocalTime) -> (ConnectabilityState, ModeChoice?) {
        let isSelf = asker?.userID == userID
        if sharing == .authorised, !isSelf, asker.map({ !$0.isListed(in: authorised, lists: lists) }) ?? false {
            return (.subjectToAuthorisation, nil)
        }
        let choice = asker.map { mode(for: $0, now: now, local: local) } ?? scheduledMode(now: now, local: local)
        let state: ConnectabilityState = switch choice.mode.state {
        case .hidden: .unknown
        case .transfer: .inTransfer
        case .notAvailable: .notConnectable
        case .available: registered ? .connectable : .unknown
        }
        return (state, choice)
    }
}

extension Availability.Rule {
    /// Whether the window holds at `local`. A window ending at or before its start runs past
    /// midnight: its days and calendar name the day it starts.
    public func contains(_ local: LocalTime) -> Bool {
        if start < end {
            return local.minute >= start && local.minute < end && holds(on: local.day, weekday: local.weekday)
        }
        if local.minute >= start { return holds(on: local.day, weekday: local.weekday) }
        return local.minute < end && holds(on: local.day - 1, weekday: local.weekday == 1 ? 7 : local.weekday - 1)
    }

    /// Whether the rule's days and calendar admit the local date `day`.
    func holds(on day: Int64, weekday: Int) -> Bool {
        guard days.contains(weekday) else { return false }
        guard hasCalendar else { return true }
        if !dates.isEmpty, !dates.contains(where: { $0.contains(day) }) { return false }
        let date = CivilDate(days: day)
        let length = CivilDate.length(ofMonth: date.month, year: date.year)
        if !monthDays.isEmpty, !monthDays.contains(date.day), !(monthDays.contains(-1) && date.day == length) { return false }
        if !monthWeeks.isEmpty, !monthWeeks.contains((date.day - 1) / 7 + 1), !(monthWeeks.contains(-1) && date.day + 7 > length) {
            return false
        }
        if !yearDays.isEmpty, !yearDays.contains(date.month * 100 + date.day) { return false }
        return true
    }

    var summary: String {
        let names = LocalTime.dayNames
        var parts: [String] = []
        if days.count < 7 { parts.append(days.sorted().map { names[$0 - 1] }.joined(separator: ",")) }
        if !dates.isEmpty { parts.append(dateTexts.joined(separator: ",")) }
        if !monthDays.isEmpty { parts.append("month days " + monthDays.sorted().map { $0 == -1 ? "last" : String($0) }.joined(separator: ",")) }
        if !monthWeeks.isEmpty { parts.append("weeks " + monthWeeks.sorted().map { $0 == -1 ? "last" : String($0) }.joined(separator: ",")) }
        if !yearDays.isEmpty { parts.append("yearly " + yearDayTexts.joined(separator: ",")) }
        if parts.isEmpty { parts.append("every day") }
        return "\(parts.joined(separator: " ")) \(Availability.clockText(start))–\(Availability.clockText(end)) → \(mode)"
    }
}
