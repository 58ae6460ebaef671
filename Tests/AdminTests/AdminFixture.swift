import Foundation
import JSON
@testable import Admin
import Registrar
@testable import Registry
import Routing
import Events

/// A dispatcher over a fresh registry file, and a way to call it as a client would.
final class AdminFixture {
    let path: String
    let registry: Registry
    let dispatcher: AdminDispatcher
    let events: EventDispatcher
    let location: Location
    let authFailures = AuthFailures(policy: BanPolicy(maxFailures: 1, window: 60, banTime: 600))
    /// 2026-11-21T00:00:00Z: the dispatcher's "now" (gauge periods, bans, routing), the day of the calls.
    static let now: Int64 = 1_795_219_200_000
    /// 2026-11-22T00:00:00Z: when the operator's writes happen (the store's clock, running from there),
    /// the day after the calls, so the carrier switch comes after them whatever day the test runs.
    static let operatorDay: Int64 = now + 86_400_000

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-admin-\(UUID().uuidString).db").path
        let clock = Registry.clock(startingAt: Self.operatorDay)
        registry = try Registry(database: try Database(path: path), realm: "tandem.test", clock: clock)
        location = try Location(registry: registry, now: Self.now)
        let plans = try DialplanSet.compile([("users.dialplan", "10 exact 112 - class=emergency\n20 regex ^0([1-9][0-9]{8})$ +33\\1 class=national\n")]).get()
        let routing = RoutingAccess(dialplans: { plans }, policy: { RoutingPolicy(userDialplan: "users", providerDialplan: "users", hasDefaultRoute: false) },
                                    reload: { .success(plans) })
        var options = EventDispatcher.Options()
        options.webhookTimeout = 500
        options.pollInterval = 50
        events = try EventDispatcher(registry: registry, options: options, clock: clock)
        events.start()
        dispatcher = AdminDispatcher(registry: registry, version: "test", location: location, authFailures: authFailures,
                                     routing: routing, events: events, statistics: { [("udp.received", 7)] }, clock: { AdminFixture.now })
    }

    deinit {
        events.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Sends one request line and returns the parsed answer.
    func call(_ method: String, _ params: JSONValue = [:], id: JSONValue = 1, session: AdminSession = AdminSession()) -> JSONValue {
        let request: JSONValue = ["jsonrpc": "2.0", "id": id, "method": .string(method), "params": params]
        let line = dispatcher.handle(Array(request.description.utf8), session: session) ?? "null"
        return (try? JSONValue.parse(line)) ?? .string(line)
    }

    func raw(_ text: String, session: AdminSession = AdminSession()) -> JSONValue? {
        dispatcher.handle(Array(text.utf8), session: session).map { (try? JSONValue.parse($0)) ?? .string($0) }
    }
}

/// Waits up to `seconds` for `condition` (what the event dispatcher's threads do).
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    // The monotonic clock: a wait must not depend on the wall clock (tools/clock-check fakes it).
    let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(seconds * 1000)))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
