#if canImport(Glibc)
import Glibc
#endif
import Admin
import Dispatch
import Foundation
import JSON
import Registry
import Synchronization

/// `tandem-bench registry N`: N households (account, user, personal number) imported into a fresh
/// registry file, then snapshot lookups and single writes at that size.
enum RegistryBench {
    static func clock() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func run(households: Int) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let csv = folder + "/import.csv"
        var text = "record,account_id,name,user_id,display_name,role,sip_username,number,kind,owner\n"
        text.reserveCapacity(households * 120)
        for index in 0..<households {
            text += "account,h\(index),Household \(index),,,,,,,\n"
            text += "user,h\(index),,u\(index),User \(index),primary,user\(index),,,\n"
            text += "number,h\(index),,,,,,\(number(index)),personal,u\(index)\n"
        }
        try text.write(toFile: csv, atomically: false, encoding: .utf8)
        text = ""

        try measure(folder: folder, csv: csv, households: households)
        // A second process would open the file the same way: measured with the first one closed.
        let start = clock()
        let reloaded = try Registry(database: try Database(path: folder + "/tandem.db"), realm: "bench", clock: Registry.systemClock)
        print(String(format: "snapshot load at start: %.2f s for %d numbers", clock() - start, reloaded.snapshot.counts[2].1))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print("peak memory: \(usage.ru_maxrss / 1024) MB")
    }

    static func measure(folder: String, csv: String, households: Int) throws {
        let registry = try Registry(database: try Database(path: folder + "/tandem.db"), realm: "bench", clock: Registry.systemClock)
        var reader = try CSVReader(path: csv)
        var start = clock()
        let report = try registry.importCSV(&reader, options: ImportOptions(chunkSize: 10_000))
        let importSeconds = clock() - start
        guard report.progress.failed == 0 else { throw RegistryError.storage("import failed: \(report.errors.prefix(3))") }
        print(String(format: "import: %d rows in %.1f s = %.0f rows/s (chunks of 10000)", report.progress.rows, importSeconds,
                     Double(report.progress.rows) / importSeconds))


        // The household calls one by one, in-process: the registry's share of an admin call.
        var timings: [String: Double] = [:]
        for index in 0..<2_000 {
            let account = "x\(index)"
            var t = clock()
            _ = try registry.write { s throws(RegistryError) in try s.createAccount(id: account, name: "X", acting: nil) }
            timings["account.create", default: 0] += clock() - t
            t = clock()
            _ = try registry.write { s throws(RegistryError) in
                try s.createUser(accountID: account, id: account + "a", displayName: "A", role: .primary, sipUsername: account + "a",
                                 password: "bench-password", grants: nil, acting: nil)
            }
            timings["user.create (password)", default: 0] += clock() - t
            t = clock()
            _ = try registry.write { s throws(RegistryError) in
                try s.createUser(accountID: account, id: account + "b", displayName: "B", role: .member, sipUsername: account + "b",
                                 password: nil, grants: nil, acting: nil)
            }
            timings["user.create", default: 0] += clock() - t
            t = clock()
            _ = try registry.write { s throws(RegistryError) in
                try s.createNumber("+3318\(String(format: "%07d", index))", accountID: account, kind: .personal, ownerUserID: account + "a",
                                   providerID: nil, acting: nil)
            }
            timings["number.create", default: 0] += clock() - t
        }
        for (name, total) in timings.sorted(by: { $0.key < $1.key }) {
            print(String(format: "in-process %@: %.0f µs", name, total / 2_000 * 1e6))
        }

        // Lookups: random present numbers, SIP usernames, and misses, from one snapshot.
        let snapshot = registry.snapshot
        var generator = SystemRandomNumberGenerator()
        let probes = (0..<1_000_000).map { _ in number(Int(generator.next(upperBound: UInt32(households)))) }
        let usernames = (0..<1_000_000).map { _ in "user\(generator.next(upperBound: UInt32(households)))" }
        let misses = probes.map { "+4" + $0.dropFirst(2) }
        // The reference: a plain Swift Dictionary with the same keys and probes (no snapshot, no
        // sharing), the floor of a hash lookup at this size on this machine.
        var plain: [String: String] = [:]
        plain.reserveCapacity(households)
        for index in 0..<households { plain[number(index)] = "h\(index)" }
        var found = 0
        for round in 0..<3 {
            start = clock()
            for probe in probes where plain[probe] != nil { found += 1 }
            print(String(format: "reference: plain Dictionary lookup %.0f ns", (clock() - start) / Double(probes.count) * 1e9))
            start = clock()
            for probe in probes where snapshot.number(probe) != nil { found += 1 }
            let numberNs = (clock() - start) / Double(probes.count) * 1e9
            start = clock()
            for name in usernames where snapshot.user(sipUsername: name) != nil { found += 1 }
            let userNs = (clock() - start) / Double(usernames.count) * 1e9
            start = clock()
            for probe in probes where snapshot.hasNumber(probe) { found += 1 }
            let containsNs = (clock() - start) / Double(probes.count) * 1e9
            print(String(format: "presence only (hasNumber) %.0f ns", containsNs))
            start = clock()
            for probe in misses where snapshot.number(probe) != nil { found += 1 }
            let missNs = (clock() - start) / Double(probes.count) * 1e9
            start = clock()
            for _ in 0..<1_000_000 { _ = registry.snapshot }
            let takeNs = (clock() - start) / 1e6 * 1e9
            print(String(format: "lookup round %d: number %.0f ns, sip username %.0f ns, miss %.0f ns, take snapshot %.0f ns",
                         round + 1, numberNs, userNs, missNs, takeNs))
        }
        guard found >= 9_000_000 else { throw RegistryError.storage("lookups missed: \(found)") }

        // Single writes at this size: one transaction plus publishing a new snapshot each.
        let writes = 5_000
        start = clock()
        for index in 0..<writes {
            _ = try registry.write { s throws(RegistryError) in
                try s.updateNumber(number(index), kind: .household, ownerUserID: nil, acting: nil)
            }
        }
        let writeSeconds = clock() - start
        print(String(format: "single writes (number.update, in-process): %.0f /s, %.0f µs each", Double(writes) / writeSeconds,
                     writeSeconds / Double(writes) * 1e6))
    }

    static func number(_ index: Int) -> String {
        let digits = String(index)
        return "+3310" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
    }
}

/// `tandem-bench admin SOCKET CALLS`: provisioning through a running tandem's admin socket, as an
/// operator provisions households: account.create, user.create (primary, with a password),
/// user.create (member), number.create (personal) — four calls per household.
enum AdminSocketBench {
    static func household(_ tag: String, _ index: Int, id: Int) -> [JSONValue] {
        let account = "\(tag)h\(index)"
        let params: [(String, JSONValue)] = [
            ("account.create", ["id": .string(account), "name": "Household"]),
            ("user.create", ["account": .string(account), "id": .string(account + "a"), "display_name": "A", "role": "primary",
                             "sip_username": .string(account + "a"), "password": "bench-password"]),
            ("user.create", ["account": .string(account), "id": .string(account + "b"), "display_name": "B",
                             "sip_username": .string(account + "b")]),
            ("number.create", ["number": .string("+3319\(String(format: "%08d", id * 1000 + index % 1000))"), "account": .string(account),
                               "kind": "personal", "owner": .string(account + "a")]),
        ]
        return params.map { ["jsonrpc": "2.0", "id": .integer(Int64(index)), "method": .string($0.0), "params": $0.1] }
    }

    static func run(socket: String, calls: Int) throws {
        let tag = "b\(UInt32.random(in: 0...UInt32.max) % 100_000)"
        let households = calls / 4
        let client = try AdminClient(socketPath: socket)

        var start = RegistryBench.clock()
        for index in 0..<households {
            for request in household(tag + "s", index, id: index / 1000) {
                try client.send(line: request.description)
                guard let line = client.readLine(), let answer = try? JSONValue.parse(line), answer["result"] != nil else {
                    throw AdminServerError(reason: "call failed: \(request)")
                }
            }
        }
        var seconds = RegistryBench.clock() - start
        print(String(format: "single calls, one client: %.0f calls/s (%.0f µs each), %d households", Double(households * 4) / seconds,
                     seconds / Double(households * 4) * 1e6, households))

        start = RegistryBench.clock()
        for index in 0..<(households * 4) {
            let answer = try client.call("user.get", ["id": .string("\(tag)sh\(index % households)a")])
            guard answer["result"] != nil else { throw AdminServerError(reason: "\(answer)") }
        }
        seconds = RegistryBench.clock() - start
        print(String(format: "single reads, one client (user.get): %.0f calls/s", Double(households * 4) / seconds))

        start = RegistryBench.clock()
        var index = 0
        while index < households {
            let requests = (index..<min(households, index + 25)).flatMap { household(tag + "t", $0, id: 1000 + $0 / 1000) }
            try client.send(line: JSONValue.array(requests).description)
            guard let line = client.readLine(), let answers = try? JSONValue.parse(line).arrayValue, answers.count == requests.count,
                  answers.allSatisfy({ $0["result"] != nil }) else { throw AdminServerError(reason: "batch failed") }
            index += 25
        }
        seconds = RegistryBench.clock() - start
        print(String(format: "batched calls (100 per batch): %.0f calls/s", Double(households * 4) / seconds))

        let clients = 4
        let failures = Atomic<Int>(0)
        let group = DispatchGroup()
        start = RegistryBench.clock()
        for worker in 0..<clients {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let own = try? AdminClient(socketPath: socket) else { failures.add(calls, ordering: .relaxed); return }
                for index in 0..<(households / clients) {
                    for request in household(tag + "p\(worker)", index, id: 2000 + worker * 100 + index / 1000) {
                        try? own.send(line: request.description)
                        if own.readLine().flatMap({ try? JSONValue.parse($0) })?["result"] == nil { failures.add(1, ordering: .relaxed) }
                    }
                }
            }.start()
        }
        group.wait()
        seconds = RegistryBench.clock() - start
        print(String(format: "single calls, %d clients in parallel: %.0f calls/s, %d failed", clients,
                     Double((households / clients) * clients * 4) / seconds, failures.load(ordering: .relaxed)))
    }
}

/// An empty registry in memory, for the proxy benchmarks (their peers are trusted sources).
struct BenchRegistry {
    let registry: Registry

    init() {
        registry = try! Registry(database: try! Database(path: ":memory:"), realm: "tandem", clock: Registry.systemClock)
    }
}
