import Testing
@testable import Registrar

@Suite struct FloodGuardTests {
    let now: Int64 = 1_795_219_200_000

    @Test func aSourcePastItsLimitIsDroppedUntilItsBanEnds() {
        let policy = FloodPolicy(limit: 3, window: 2, banTime: 60)
        let bans = AuthFailures(policy: BanPolicy())
        let verdicts = (0..<5).map { bans.checkFlood(source: "192.0.2.1", now: now + Int64($0) * 100, policy: policy) }
        #expect(verdicts[0...2] == [.pass, .pass, .pass])
        guard case .banned(let ban) = verdicts[3] else { Issue.record("no ban: \(verdicts)"); return }
        #expect(ban.dropsAll && ban.until == now + 300 + 60_000 && ban.failures == 4)
        #expect(verdicts[4] == .drop)
        #expect(bans.bans(now: now + 1_000).map(\.source) == ["192.0.2.1"])
        // Other sources are counted apart.
        #expect(bans.checkFlood(source: "192.0.2.2", now: now + 500, policy: policy) == .pass)
        // Dropped while the ban lasts, even in later windows; free again after it.
        #expect(bans.checkFlood(source: "192.0.2.1", now: now + 59_000, policy: policy) == .drop)
        #expect(bans.checkFlood(source: "192.0.2.1", now: now + 61_000, policy: policy) == .pass)
        #expect(bans.bans(now: now + 61_000).isEmpty)
    }

    @Test func windowsStartAfresh() {
        let policy = FloodPolicy(limit: 2, window: 1, banTime: 60)
        let bans = AuthFailures(policy: BanPolicy())
        // Two in each second for ten seconds never bans.
        for second in 0..<10 {
            for offset in [100, 600] {
                #expect(bans.checkFlood(source: "192.0.2.1", now: now + Int64(second) * 1_000 + Int64(offset), policy: policy) == .pass)
            }
        }
    }

    @Test func unbanLiftsAFloodBanAndOffTurnsItOff() {
        let policy = FloodPolicy(limit: 1, window: 1, banTime: 600)
        let bans = AuthFailures(policy: BanPolicy())
        #expect(bans.checkFlood(source: "192.0.2.1", now: now, policy: policy) == .pass)
        #expect(bans.checkFlood(source: "192.0.2.1", now: now + 1, policy: policy) != .pass)
        #expect(bans.unban("192.0.2.1"))
        #expect(bans.checkFlood(source: "192.0.2.1", now: now + 2, policy: policy) == .pass)
        for step in 0..<100 { #expect(bans.checkFlood(source: "192.0.2.1", now: now + 3 + Int64(step), policy: FloodPolicy(limit: 0)) == .pass) }
    }

    /// A sweep keeps bans in force and forgets quiet sources.
    @Test func sweepKeepsBans() {
        let policy = FloodPolicy(limit: 1, window: 1, banTime: 600)
        let bans = AuthFailures(policy: BanPolicy())
        _ = bans.checkFlood(source: "192.0.2.1", now: now, policy: policy)
        _ = bans.checkFlood(source: "192.0.2.1", now: now, policy: policy)
        bans.sweep(now: now + 5_000)
        #expect(bans.checkFlood(source: "192.0.2.1", now: now + 5_001, policy: policy) == .drop)
    }
}
