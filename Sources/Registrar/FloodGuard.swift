import Synchronization

/// Limits on what one untrusted source may send (`security.flood_limit`, `security.flood_window`,
/// `security.flood_ban_time`), as Kamailio's pike module does for requests.
public struct FloodPolicy: Sendable, Equatable {
    /// Messages allowed from one source within `window` seconds; the next one bans. 0 turns it off.
    public var limit = 200
    public var window = 1
    /// Seconds a flooding source is dropped for.
    public var banTime = 60

    public init(limit: Int = 200, window: Int = 1, banTime: Int = 60) {
        self.limit = limit
        self.window = window
        self.banTime = banTime
    }
}

/// Counts the messages of each source in fixed windows; a source past the limit is dropped
/// unanswered until its ban ends, and the ban is listed with the authentication bans (`auth.bans`;
/// `auth.unban` lifts it). Counting happens before a message is parsed, under one lock of a table
/// split in shards by source: a flood costs a dictionary lookup, not a libosip2 parse. Time comes
/// in as a value.
public final class FloodGuard: Sendable {
    /// What to do with a message.
    public enum Verdict: Equatable, Sendable {
        case pass
        /// The source is banned: drop the message.
        case drop
        /// This message was one too many: drop it, and tell the operator about the ban.
        case banned(Ban)
    }

    private struct Count {
        var windowStart: Int64
        var messages: Int
        var bannedUntil: Int64 = 0
    }
    private static let shardCount = 16
    /// Sources tracked per shard at most: past it, sources neither counted in the current window nor
    /// banned are forgotten, so spoofed addresses cannot grow the table without bound.
    private static let sourcesPerShard = 16_384
    /// Mutex is not copyable, so each shard's lives in a class of its own.
    private final class Shard: Sendable {
        let counts = Mutex<[String: Count]>([:])
    }
    private let shards: [Shard]

    public init() {
        shards = (0..<Self.shardCount).map { _ in Shard() }
    }

    private func shard(_ source: String) -> Shard {
        var hasher = Hasher()
        hasher.combine(source)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.shardCount))]
    }

    /// Counts one message from `source` at `now` under `policy` (the gateway's settings, read once
    /// per message already, so no lock of its own here).
    public func check(source: String, now: Int64, policy: FloodPolicy) -> Verdict {
        guard policy.limit > 0 else { return .pass }
        let window = Int64(policy.window) * 1000
        let windowStart = now - now % window
        return shard(source).counts.withLock { counts -> Verdict in
            if counts.count >= Self.sourcesPerShard, counts[source] == nil {
                counts = counts.filter { $0.value.windowStart == windowStart || $0.value.bannedUntil > now }
                if counts.count >= Self.sourcesPerShard { return .pass }
            }
            var entry = counts[source] ?? Count(windowStart: windowStart, messages: 0)
            if entry.bannedUntil > now { return .drop }
            if entry.windowStart != windowStart {
                entry.windowStart = windowStart
                entry.messages = 0
            }
            entry.messages += 1
            defer { counts[source] = entry }
            guard entry.messages > policy.limit else { return .pass }
            entry.bannedUntil = now + Int64(policy.banTime) * 1000
            return .banned(Ban(source: source, since: now, until: entry.bannedUntil, failures: entry.messages, username: nil,
                               reason: "flood: more than \(policy.limit) messages within \(policy.window) s", dropsAll: true))
        }
    }

    /// Lets `source` send again at once.
    public func lift(_ source: String) {
        shard(source).counts.withLock { _ = $0.removeValue(forKey: source) }
    }

    /// Forgets sources with nothing counted in the last hour (the longest window) and no ban in force.
    public func sweep(now: Int64) {
        for shard in shards {
            shard.counts.withLock { counts in counts = counts.filter { $0.value.windowStart > now - 3_600_000 || $0.value.bannedUntil > now } }
        }
    }
}
