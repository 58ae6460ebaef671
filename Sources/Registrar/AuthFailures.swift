import Synchronization

/// Limits on failed authentications (`auth.max_failures`, `auth.window`, `auth.ban_time`).
public struct BanPolicy: Sendable, Equatable {
    /// Failures allowed within `window`; the next one bans. 0 turns banning off.
    public var maxFailures = 5
    /// Seconds over which failures are counted.
    public var window = 60
    /// Seconds a ban lasts.
    public var banTime = 600

    public init(maxFailures: Int = 5, window: Int = 60, banTime: Int = 600) {
        self.maxFailures = maxFailures
        self.window = window
        self.banTime = banTime
    }
}

/// A source address refused without a challenge until `until`.
public struct Ban: Sendable, Equatable {
    public var source: String
    /// Milliseconds since the Unix epoch.
    public var since: Int64
    public var until: Int64
    /// Failures counted when the ban began.
    public var failures: Int
    /// The username whose failures caused it, when that was the reason.
    public var username: String?
    public var reason: String
    /// A flood ban: every message from the source is dropped unanswered, not only its
    /// authentications refused.
    public var dropsAll: Bool

    public init(source: String, since: Int64, until: Int64, failures: Int, username: String?, reason: String, dropsAll: Bool = false) {
        self.source = source
        self.since = since
        self.until = until
        self.failures = failures
        self.username = username
        self.reason = reason
        self.dropsAll = dropsAll
    }
}

/// Failed digest authentications counted per source address and per username, in a sliding window
/// (as fail2ban or Kamailio's pike + htable do). A source past the limit is banned; a username past
/// the limit bans every source that fails for it next — a spread-out guess at one password is cut
/// off too, while the user's own devices, which do not fail, keep working. Time comes in as a value.
public final class AuthFailures: Sendable {
    private struct State {
        var bySource: [String: [Int64]] = [:]
        var byUsername: [String: [Int64]] = [:]
        var bans: [String: Ban] = [:]
    }

    private let state = Mutex(State())
    private let policy: Mutex<BanPolicy>
    /// Floods are banned here too, so one list (`auth.bans`) and one lift (`auth.unban`) serve both.
    public let flood: FloodGuard

    public init(policy: BanPolicy) {
        self.policy = Mutex(policy)
        self.flood = FloodGuard()
    }

    public func update(_ policy: BanPolicy) { self.policy.withLock { $0 = policy } }

    /// The ban on `source` in force at `now`, if any.
    public func ban(of source: String, now: Int64) -> Ban? {
        state.withLock { state in
            guard let ban = state.bans[source] else { return nil }
            guard ban.until > now else {
                state.bans[source] = nil
                return nil
            }
            return ban
        }
    }

    /// Counts one failure; returns the ban it starts, if it starts one.
    public func recordFailure(source: String, username: String?, now: Int64) -> Ban? {
        let policy = self.policy.withLock { $0 }
        guard policy.maxFailures > 0 else { return nil }
        let windowStart = now - Int64(policy.window) * 1000
        return state.withLock { state -> Ban? in
            var sourceFailures = state.bySource[source, default: []].filter { $0 > windowStart }
            sourceFailures.append(now)
            state.bySource[source] = sourceFailures
            var userFailures: [Int64] = []
            if let username {
                userFailures = state.byUsername[username, default: []].filter { $0 > windowStart }
                userFailures.append(now)
                state.byUsername[username] = userFailures
            }
            guard state.bans[source].map({ $0.until <= now }) ?? true else { return nil }
            let reason: String
            let byUser: String?
            if sourceFailures.count > policy.maxFailures {
                reason = "\(sourceFailures.count) failed authentications from this address within \(policy.window) s"
                byUser = nil
            } else if userFailures.count > policy.maxFailures, let username {
                reason = "\(userFailures.count) failed authentications for \(username) within \(policy.window) s"
                byUser = username
            } else {
                return nil
            }
            let ban = Ban(source: source, since: now, until: now + Int64(policy.banTime) * 1000,
                          failures: max(sourceFailures.count, userFailures.count), username: byUser, reason: reason)
            state.bans[source] = ban
            return ban
        }
    }

    /// Counts one message for flood protection; a ban it starts is listed with the others.
    public func checkFlood(source: String, now: Int64, policy: FloodPolicy) -> FloodGuard.Verdict {
        let verdict = flood.check(source: source, now: now, policy: policy)
        if case .banned(let ban) = verdict { state.withLock { $0.bans[ban.source] = ban } }
        return verdict
    }

    /// Bans in force at `now`, by source.
    public func bans(now: Int64) -> [Ban] {
        state.withLock { state in
            state.bans = state.bans.filter { $0.value.until > now }
            return state.bans.values.sorted { $0.source < $1.source }
        }
    }

    /// Lifts a ban and forgets the source's failures; `false` when it was not banned.
    @discardableResult
    public func unban(_ source: String) -> Bool {
        flood.lift(source)
        return state.withLock { state in
            state.bySource[source] = nil
            return state.bans.removeValue(forKey: source) != nil
        }
    }

    /// Forgets a username's failures (after an operator resets the password, say).
    public func forgive(username: String) {
        state.withLock { _ = $0.byUsername.removeValue(forKey: username) }
    }

    /// Drops counters with nothing inside the window and bans that ended.
    public func sweep(now: Int64) {
        let window = Int64(policy.withLock { $0.window }) * 1000
        state.withLock { state in
            state.bySource = state.bySource.filter { $0.value.last.map { $0 > now - window } ?? false }
            state.byUsername = state.byUsername.filter { $0.value.last.map { $0 > now - window } ?? false }
            state.bans = state.bans.filter { $0.value.until > now }
        }
        flood.sweep(now: now)
    }
}
