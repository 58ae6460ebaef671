#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import Node
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport
import Synchronization

/// `tandem-bench presence USERS WATCHED CHANGES`: the presence server in-process, on a registry file,
/// a recording transport and virtual time. USERS users each watch WATCHED others (one SUBSCRIBE each,
/// from a trusted source, every NOTIFY answered 200); then CHANGES availability changes of random
/// users, each a registry write whose watchers are notified before it returns. Reports the CPU time
/// per subscription and per NOTIFY spent inside Tandem, the resident memory per subscription, the
/// time from a change to its last NOTIFY (p50/p99/max), and a minute's pass over every watched user.
enum PresenceBench {
    static func run(users: Int, watched: Int, changes: Int) throws {
        let path = NSTemporaryDirectory() + "tandem-presence-bench-\(getpid()).db"
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let start: Int64 = 1_795_000_000_000
        let wall = Atomic<Int64>(start)
        let clock: @Sendable () -> Int64 = { wall.load(ordering: .relaxed) }
        let registry = try Registry(database: try Database(path: path), realm: "tandem", clock: clock)
        let proxy = SocketAddress(host: "127.0.0.1", port: 5060)
        let phones = SocketAddress(host: "127.0.0.2", port: 5072)
        var configuration = Configuration()
        configuration.listen = [ListenPoint(transport: .udp, address: proxy)]
        configuration.trustedSources = [AddressBlock("127.0.0.2/32")!]
        configuration.floodPolicy.limit = 0
        configuration.presence.maxSubscriptions = users * watched + 1
        configuration.presence.maxPerWatcher = watched + 1
        let perAccount = 20
        try registry.write { s throws(RegistryError) in
            for account in 0..<(users + perAccount - 1) / perAccount {
                _ = try s.createAccount(id: "a\(account)", name: "Household \(account)", timeZone: "Europe/Paris", acting: nil)
            }
            for user in 0..<users {
                _ = try s.createUser(accountID: "a\(user / perAccount)", id: "u\(user)", displayName: "User \(user)",
                                     role: user % perAccount == 0 ? .primary : .member, sipUsername: "u\(user)", password: nil,
                                     grants: nil, acting: nil)
            }
            // A tenth of the users have modes to switch between.
            for user in stride(from: 0, to: users, by: 10) {
                _ = try s.defineAvailability(userID: "u\(user)", definition: ["modes": [["name": "meeting", "state": "not_available"]]],
                                             activeProfile: nil, acting: nil)
            }
        }
        let transport = RecordingTransport()
        let timers = ManualTimers()
        var options = Node.Options()
        options.maintenance = nil
        options.presence = nil
        let (node, _) = try Node.assemble(configuration: configuration, registry: registry, transport: transport, timers: timers,
                                          logger: Logger(label: "bench", threshold: .init(.error)), clock: clock, options: options)
        node.start()
        let gateway = node.gateway
        let local = ListenPoint(transport: .udp, address: proxy)
        var inside = 0.0
        func deliver(_ text: String) {
            let message = InboundMessage(bytes: Array(text.utf8), transport: .udp, source: phones, local: local, connection: nil)
            let begin = ProxyBench.now()
            gateway.receive(message)
            inside += ProxyBench.now() - begin
        }
        /// Answers every NOTIFY sent since the last call with a 200, as the phones do; returns how many.
        func answerNotifies() -> Int {
            var answered = 0
            for bytes in transport.take() where bytes.starts(with: Array("NOTIFY ".utf8)) {
                let text = String(decoding: bytes, as: UTF8.self)
                var lines: [Substring] = []
                for line in text.split(separator: "\r\n") {
                    if line.hasPrefix("Via:") || line.hasPrefix("From:") || line.hasPrefix("To:") || line.hasPrefix("Call-ID:") || line.hasPrefix("CSeq:") {
                        lines.append(line)
                    }
                    if line.isEmpty { break }
                }
                deliver("SIP/2.0 200 OK\r\n" + lines.joined(separator: "\r\n") + "\r\nContent-Length: 0\r\n\r\n")
                answered += 1
            }
            return answered
        }
        func advance(_ seconds: Double) {
            wall.add(Int64(seconds * 1000), ordering: .relaxed)
            timers.advance(by: seconds)
        }

        let before = residentMegabytes()
        let wallStart = ProxyBench.now()
        var notifies = 0
        for user in 0..<users {
            for k in 0..<watched {
                let target = (user + 1 + k * 37) % users
                deliver("""
                SUBSCRIBE sip:u\(target)@127.0.0.1:5060 SIP/2.0\r
                Via: SIP/2.0/UDP 127.0.0.2:5072;branch=z9hG4bK-s\(user)-\(k);rport\r
                Max-Forwards: 70\r
                From: <sip:u\(user)@127.0.0.1:5060>;tag=w\(user)\r
                To: <sip:u\(target)@127.0.0.1:5060>\r
                Call-ID: sub-\(user)-\(k)@127.0.0.2\r
                CSeq: 1 SUBSCRIBE\r
                Contact: <sip:u\(user)@127.0.0.2:5072>\r
                Event: presence\r
                Accept: application/pidf+xml\r
                Expires: 3600\r
                Content-Length: 0\r
                \r

                """)
                notifies += answerNotifies()
            }
            if user % 500 == 499 { advance(1) }
        }
        advance(10)
        node.subscriptions.flush()
        let subscribeSeconds = inside
        let held = gateway.presenceCounts
        let after = residentMegabytes()
        print(String(format: "presence: %d users watching %d each: %d subscriptions held, %d initial NOTIFYs, %.1f µs per SUBSCRIBE "
                     + "(its 200, its NOTIFY, the 200 to it) inside Tandem, %.0f s wall; memory %.0f → %.0f MB (%.2f KB per subscription)",
                     users, watched, held.subscriptions, notifies, subscribeSeconds / Double(users * watched) * 1e6,
                     ProxyBench.now() - wallStart, before, after, (after - before) * 1024 / Double(max(held.subscriptions, 1))))

        // Changes: each a registry write (an override set or cleared) whose watchers are notified
        // before the write returns (virtual time: the presence pass runs on the writer's thread).
        var latencies: [Double] = []
        var changeNotifies = 0
        var changeSeconds = 0.0
        var generator = SystemRandomNumberGenerator()
        var overridden = Set<Int>()
        for change in 0..<changes {
            let user = Int.random(in: 0..<(users / 10), using: &generator) * 10
            let mode: String?? = overridden.contains(user) ? .some(nil) : .some("meeting")
            let begin = ProxyBench.now()
            _ = try registry.write { s throws(RegistryError) in
                try s.setAvailability(userID: "u\(user)", mode: mode, until: nil, profile: nil, acting: nil)
            }
            let elapsed = ProxyBench.now() - begin
            latencies.append(elapsed)
            changeSeconds += elapsed
            if overridden.contains(user) { overridden.remove(user) } else { overridden.insert(user) }
            let before = inside
            changeNotifies += answerNotifies()
            changeSeconds += inside - before
            if change % 100 == 99 { advance(1) }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000 }
        print(String(format: "presence: %d changes → %d NOTIFYs; %.1f µs per NOTIFY inside Tandem (the change's registry write, "
                     + "the views, the NOTIFY built and sent, its 200 received); change to last NOTIFY p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     changes, changeNotifies, changeSeconds / Double(max(changeNotifies, 1)) * 1e6, percentile(0.5), percentile(0.99),
                     latencies.last.map { $0 * 1000 } ?? 0))

        // The pass each minute: every watched user's watchers looked at again, nothing changed.
        let passStart = ProxyBench.now()
        gateway.presenceChanged(Set((0..<users).map { "u\($0)" }))
        let passSeconds = ProxyBench.now() - passStart
        let sent = transport.take().count
        print(String(format: "presence: a minute's pass over %d watched users (%d subscriptions): %.0f ms, %d NOTIFYs (nothing changed)",
                     held.presentities, held.subscriptions, passSeconds * 1000, sent))
    }

    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Double(line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0) / 1024
        }
        return 0
    }
}
