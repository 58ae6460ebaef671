#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import JSON
import Testing
@testable import Admin
import Registry

/// The admin socket over real Unix and TCP sockets.
@Suite(.serialized) struct AdminServerTests {
    func socketPath() -> String { "/tmp/tandem-test-\(UUID().uuidString.prefix(8)).sock" }

    func server(_ admin: AdminFixture, configure: (inout AdminServer.Options) -> Void = { _ in }) throws -> AdminServer {
        var options = AdminServer.Options(socketPath: socketPath())
        configure(&options)
        let server = try AdminServer(dispatcher: admin.dispatcher, options: options)
        server.start()
        return server
    }

    @Test func socketIsPrivateAndStaleOnesAreReplaced() throws {
        let admin = try AdminFixture()
        let path = socketPath()
        // A socket file left by a crashed process: no one answers on it.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(AdminServer.withAddress(path) { bind(stale, $0, $1) } == 0)
        close(stale)
        let server = try AdminServer(dispatcher: admin.dispatcher, options: .init(socketPath: path))
        server.start()
        defer { server.stop() }
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        // A second server on the same live socket is refused.
        #expect(throws: AdminServerError.self) { _ = try AdminServer(dispatcher: admin.dispatcher, options: .init(socketPath: path)) }
        let client = try AdminClient(socketPath: path)
        #expect(try client.call("system.version")["result"]?["version"] == "test")
        server.stop()
        #expect(lstat(path, &info) != 0)
    }

    @Test func concurrentClientsAllLand() async throws {
        let admin = try AdminFixture()
        let server = try server(admin)
        defer { server.stop() }
        let path = server.options.socketPath
        let failures = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    guard let client = try? AdminClient(socketPath: path) else { return 50 }
                    var failed = 0
                    for index in 0..<50 {
                        let answer = try? client.call("account.create", ["id": .string("w\(worker)-\(index)"), "name": "N"])
                        if answer?["result"] == nil { failed += 1 }
                    }
                    return failed
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
        #expect(admin.registry.snapshot.counts.first { $0.0 == "accounts" }?.1 == 400)
    }

    @Test func oversizedLinesAreAnsweredAndSkipped() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.maxRequest = 1024 }
        defer { server.stop() }
        let client = try AdminClient(socketPath: server.options.socketPath)
        let huge = #"{"jsonrpc":"2.0","id":1,"method":"account.create","params":{"name":""# + String(repeating: "x", count: 200_000) + #""}}"#
        try client.send(line: huge)
        let refusal = try JSONValue.parse(try #require(client.readLine()))
        #expect(refusal["error"]?["code"] == -32005)
        // The same connection carries on.
        #expect(try client.call("system.version")["result"]?["version"] == "test")
        #expect(admin.registry.snapshot.counts.first { $0.0 == "accounts" }?.1 == 0)
    }

    @Test func stalledClientsDoNotHoldUpOthers() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.writeTimeout = 1 }
        defer { server.stop() }
        let path = server.options.socketPath
        // One client sends half a request and stops; another floods requests and never reads.
        let half = try AdminClient(socketPath: path)
        try half.send(line: "")
        let stalled = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(AdminServer.withAddress(path) { connect(stalled, $0, $1) } == 0)
        defer { close(stalled) }
        _ = AdminServer.writeAll(stalled, Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"account.create\",\"params\":{\"name\":\"".utf8))
        var flood: [UInt8] = []
        for index in 0..<3_000 { flood += Array("{\"jsonrpc\":\"2.0\",\"id\":\(index),\"method\":\"system.methods\"}\n".utf8) }
        let flooder = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(AdminServer.withAddress(path) { connect(flooder, $0, $1) } == 0)
        defer { close(flooder) }
        let payload = flood
        let writer = Thread { _ = AdminServer.writeAll(flooder, payload) }
        writer.start()
        Thread.sleep(forTimeInterval: 0.3)
        let start = ContinuousClock.now
        let client = try AdminClient(socketPath: path)
        for index in 0..<20 {
            #expect(try client.call("account.create", ["id": .string("ok\(index)"), "name": "OK"])["result"] != nil)
        }
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    /// A line trickled a byte at a time keeps the socket busy but must still end within
    /// `requestTimeout` of its first byte; a subscriber's half line is no exception.
    @Test func aHalfSentRequestTimesOut() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.requestTimeout = 1; $0.idleTimeout = 30 }
        defer { server.stop() }
        let path = server.options.socketPath
        let trickler = try AdminClient(socketPath: path)
        let subscriber = try AdminClient(socketPath: path)
        #expect(try subscriber.call("events.subscribe", ["types": ["test.*"]])["result"]?["subscription"] != nil)
        try subscriber.send(raw: Array(#"{"jsonrpc":"2.0","id":2,"#.utf8))
        let start = ContinuousClock.now
        let line = Array(#"{"jsonrpc":"2.0","id":1,"method":"system.version"}"#.utf8)
        var sent = 0
        // 200 ms per byte: the socket is never silent for a second, the line never ends in time.
        while sent < 12, (try? trickler.send(raw: [line[sent]])) != nil {
            sent += 1
            Thread.sleep(forTimeInterval: 0.2)
        }
        let refusal = try JSONValue.parse(try #require(trickler.readLine()))
        #expect(refusal["error"]?["code"] == -32007)
        #expect(trickler.readLine() == nil)
        #expect(try JSONValue.parse(try #require(subscriber.readLine()))["error"]?["code"] == -32007)
        #expect(ContinuousClock.now - start < .seconds(4))
        #expect(admin.dispatcher.statistics.incompleteRequests.load(ordering: .relaxed) == 2)
        // Whole lines, however slowly apart, are not affected.
        let patient = try AdminClient(socketPath: path)
        #expect(try patient.call("system.version")["result"] != nil)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try patient.call("system.version")["result"] != nil)
    }

    @Test func aSubscriberIsNotDisconnectedForListeningQuietly() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.idleTimeout = 1 }
        defer { server.stop() }
        let path = server.options.socketPath
        let subscriber = try AdminClient(socketPath: path)
        let subscribed = try subscriber.call("events.subscribe", ["types": ["test.*"]])
        #expect(subscribed["result"]?["subscription"] != nil)
        let quiet = try AdminClient(socketPath: path)
        Thread.sleep(forTimeInterval: 1.8)
        // The silent client without a subscription is gone; the subscriber still gets what happens.
        #expect(quiet.readLine() == nil)
        _ = try admin.registry.write { s throws(RegistryError) in try s.emitEvent("test.ping", subject: nil, payload: [:], source: "test") }
        let notification = try JSONValue.parse(try #require(subscriber.readLine()))
        #expect(notification["method"] == "events.event" && notification["params"]?["event"]?["type"] == "test.ping")
        #expect(try subscriber.call("system.version")["result"] != nil)
    }

    /// A subscriber with a backlog gets its answer first, then the backlog; when it hangs up, nothing
    /// of its subscription reaches the next client, who gets the same descriptor number.
    @Test func aSubscriptionsEventsReachOnlyItsOwnConnection() throws {
        let admin = try AdminFixture()
        let server = try server(admin)
        defer { server.stop() }
        let path = server.options.socketPath
        try admin.registry.write { s throws(RegistryError) in
            for index in 0..<3_000 { _ = try s.emitEvent("test.ping", subject: String(index), payload: [:], source: "test") }
        }
        for _ in 0..<5 {
            let first = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            #expect(AdminServer.withAddress(path) { connect(first, $0, $1) } == 0)
            _ = AdminServer.writeAll(first, Array(#"{"jsonrpc":"2.0","id":7,"method":"events.subscribe","params":{"since":0}}"#.utf8 + [10]))
            let answer = try JSONValue.parse(try #require(Self.lines(first, within: 0.5, atMost: 1).first))
            #expect(answer["id"] == 7 && answer["result"]?["subscription"] != nil)
            close(first)
            let next = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            #expect(AdminServer.withAddress(path) { connect(next, $0, $1) } == 0)
            _ = AdminServer.writeAll(next, Array(#"{"jsonrpc":"2.0","id":1,"method":"system.version"}"#.utf8 + [10]))
            let received = Self.lines(next, within: 0.3)
            close(next)
            #expect(received.count == 1)
            #expect(received.first.flatMap { try? JSONValue.parse($0) }?["result"]?["version"] == "test")
        }
    }

    /// The mechanism under the leak: a connection closed by its reader thread while the event
    /// dispatcher still holds its sender writes nothing, even to the next socket given its number.
    @Test func aClosedConnectionWritesNothingToTheNextOneWithItsNumber() throws {
        var first: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &first) == 0)
        let closed = AdminConnection(first[0])
        closed.close()
        close(first[1])
        var second: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &second) == 0)
        defer { close(second[0]); close(second[1]) }
        #expect(second[0] == first[0] || second[1] == first[0])
        closed.notify(#"{"jsonrpc":"2.0","method":"events.event","params":{}}"#)
        closed.write(#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
        #expect(Self.lines(second[0], within: 0.1).isEmpty && Self.lines(second[1], within: 0.1).isEmpty)
        // Held notifications follow the answer of the request that started them.
        var third: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &third) == 0)
        defer { close(third[1]) }
        let open = AdminConnection(third[0])
        defer { open.close() }
        open.hold()
        open.notify("n1")
        open.notify("n2")
        open.release(answer: "answer")
        open.notify("n3")
        #expect(Self.lines(third[1], within: 0.2) == ["answer", "n1", "n2", "n3"])
    }

    /// Lines a raw client reads until `within` seconds pass with nothing new, or `atMost` lines.
    static func lines(_ fd: Int32, within seconds: Double, atMost limit: Int = .max) -> [String] {
        var timeout = timeval(tv_sec: 0, tv_usec: Int(seconds * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var lines: [String] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while lines.count < limit {
            if let newline = buffer.firstIndex(of: 10) {
                lines.append(String(decoding: buffer[..<newline], as: UTF8.self))
                buffer.removeSubrange(...newline)
                continue
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65_536, 0) }
            guard count > 0 else { break }
            buffer.append(contentsOf: chunk[..<count])
        }
        return lines
    }

    @Test func connectionsBeyondTheLimitAreToldAndClosed() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.maxConnections = 2 }
        defer { server.stop() }
        let path = server.options.socketPath
        let first = try AdminClient(socketPath: path)
        let second = try AdminClient(socketPath: path)
        _ = try first.call("system.version")
        _ = try second.call("system.version")
        let third = try AdminClient(socketPath: path)
        let refusal = try JSONValue.parse(try #require(third.readLine()))
        #expect(refusal["error"]?["code"] == -32006)
        #expect(third.readLine() == nil)
        #expect(try first.call("system.version")["result"] != nil)
    }

    @Test func tcpListenerNeedsTheToken() throws {
        let admin = try AdminFixture()
        let server = try server(admin) { $0.tcpListen = "127.0.0.1:0"; $0.token = "0123456789abcdef" }
        defer { server.stop() }
        let port = try #require(server.tcpPort)
        let client = try AdminClient(tcp: "127.0.0.1:\(port)")
        #expect(try client.call("account.list")["error"]?["code"] == -32004)
        #expect(try client.call("system.auth", ["token": "not-the-token!!!"])["error"]?["code"] == -32004)
        #expect(try client.call("system.auth", ["token": "0123456789abcdef"])["result"]?["authenticated"] == true)
        #expect(try client.call("account.list")["result"]?["total"] == 0)
        // The Unix socket needs no token.
        let local = try AdminClient(socketPath: server.options.socketPath)
        #expect(try local.call("account.list")["result"]?["total"] == 0)
        #expect(throws: AdminServerError.self) {
            _ = try AdminServer(dispatcher: admin.dispatcher, options: .init(socketPath: socketPath(), tcpListen: "0.0.0.0:0", token: "0123456789abcdef"))
        }
    }
}
