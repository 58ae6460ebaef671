import Foundation
import JSON
@testable import Admin
@testable import Registry

/// A dispatcher over a fresh registry file, and a way to call it as a client would.
final class AdminFixture {
    let path: String
    let registry: Registry
    let dispatcher: AdminDispatcher

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-admin-\(UUID().uuidString).db").path
        registry = try Registry(database: try Database(path: path), realm: "tandem.test")
        dispatcher = AdminDispatcher(registry: registry, version: "test") { [("udp.received", 7)] }
    }

    deinit {
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
