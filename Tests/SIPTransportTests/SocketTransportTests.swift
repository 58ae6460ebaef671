#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import SIPTransport

/// The real sockets: an echo handler behind SocketTransport, driven over loopback.
@Suite(.serialized) struct SocketTransportTests {
    func startEcho(maxConnections: Int = 16, idle: Double = 30, perSource: Int = 0, messageTimeout: Double = 10) throws -> SocketTransport {
        let transport = try SocketTransport(options: .init(
            listen: [try ListenPoint(parsing: "udp:127.0.0.1:0"), try ListenPoint(parsing: "tcp:127.0.0.1:0")],
            udpWorkers: 2, udpReceiveBuffer: 1 << 20, maxMessageSize: 4096, tcpIdleTimeout: idle,
            tcpMaxConnections: maxConnections, tcpMaxConnectionsPerSource: perSource, tcpMessageTimeout: messageTimeout))
        let box = TransportBox(transport)
        transport.start { message in
            let destination = Destination(transport: message.transport, address: message.source,
                                          connection: message.connection, local: message.local)
            try? box.transport.send(Array("echo:".utf8) + message.bytes, to: destination)
        }
        return transport
    }

    final class TransportBox: Sendable {
        let transport: SocketTransport
        init(_ transport: SocketTransport) { self.transport = transport }
    }

    func port(_ transport: SocketTransport, _ kind: TransportKind) -> Int {
        transport.listenPoints.first { $0.transport == kind }!.address.port
    }

    func tcpConnect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = SocketAddress(host: "127.0.0.1", port: port).withSockAddr { connect(fd, $0, $1) }
        #expect(result == 0)
        return fd
    }

    func read(_ fd: Int32) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(buffer[0..<count]) : []
    }

    @Test func udpRoundTrip() throws {
        let transport = try startEcho()
        defer { transport.stop() }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let payload = Array("OPTIONS sip:x SIP/2.0\r\n\r\n".utf8)
        _ = SocketAddress(host: "127.0.0.1", port: port(transport, .udp)).withSockAddr { address, length in
            payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
        }
        #expect(read(fd) == Array("echo:".utf8) + payload)
        // A CRLF keep-alive datagram is counted and not delivered.
        _ = SocketAddress(host: "127.0.0.1", port: port(transport, .udp)).withSockAddr { address, length in
            Array("\r\n\r\n".utf8).withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
        }
        usleep(100_000)
        #expect(transport.statistics.udpKeepalives.value == 1)
    }

    @Test func tcpFramesPipelinedMessagesAndAnswersPings() throws {
        let transport = try startEcho()
        defer { transport.stop() }
        let fd = tcpConnect(port(transport, .tcp))
        defer { close(fd) }
        let one = Array("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n".utf8)
        let two = Array("MESSAGE sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nhi".utf8)
        let all = Array("\r\n\r\n".utf8) + one + two
        _ = all.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var received: [UInt8] = []
        let expected = Array("\r\n".utf8) + Array("echo:".utf8) + one + Array("echo:".utf8) + two
        while received.count < expected.count {
            let chunk = read(fd)
            if chunk.isEmpty { break }
            received += chunk
        }
        #expect(received == expected)
    }

    @Test func tcpGarbageClosesOnlyThatConnection() throws {
        let transport = try startEcho()
        defer { transport.stop() }
        let bad = tcpConnect(port(transport, .tcp))
        let good = tcpConnect(port(transport, .tcp))
        defer { close(bad); close(good) }
        _ = Array("GARBAGE\r\n\r\n".utf8).withUnsafeBytes { send(bad, $0.baseAddress, $0.count, 0) }
        var closed = false
        for _ in 0..<3 where !closed {
            let chunk = read(bad)
            closed = chunk.isEmpty || !String(decoding: chunk, as: UTF8.self).hasPrefix("echo:") && read(bad).isEmpty
        }
        #expect(closed)
        let message = Array("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n".utf8)
        _ = message.withUnsafeBytes { send(good, $0.baseAddress, $0.count, 0) }
        #expect(read(good) == Array("echo:".utf8) + message)
        #expect(transport.statistics.tcpClosedMalformed.value == 1)
    }

    @Test func connectionLimitAndIdleTimeout() throws {
        let transport = try startEcho(maxConnections: 1, idle: 1)
        defer { transport.stop() }
        let first = tcpConnect(port(transport, .tcp))
        defer { close(first) }
        usleep(100_000)
        let second = tcpConnect(port(transport, .tcp))
        defer { close(second) }
        #expect(read(second).isEmpty)  // closed at accept: over the limit
        #expect(transport.statistics.tcpRejectedAtLimit.value == 1)
        // The first connection stays silent past the idle timeout and is closed.
        var waited = 0
        while transport.openConnections > 0 && waited < 40 {
            usleep(100_000)
            waited += 1
        }
        #expect(transport.openConnections == 0)
        #expect(transport.statistics.tcpClosedIdle.value == 1)
    }

    @Test func connectionsPerSourceAreLimitedAndFreedOnClose() throws {
        let transport = try startEcho(maxConnections: 16, perSource: 2)
        defer { transport.stop() }
        let tcp = port(transport, .tcp)
        let first = tcpConnect(tcp), second = tcpConnect(tcp)
        usleep(100_000)
        let third = tcpConnect(tcp)
        #expect(read(third).isEmpty)  // closed at accept: the address holds its two
        close(third)
        #expect(transport.statistics.tcpRejectedPerSource.value == 1)
        #expect(transport.statistics.tcpRejectedAtLimit.value == 0)
        // The two admitted ones work; closing one lets the address open another.
        let message = Array("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n".utf8)
        _ = message.withUnsafeBytes { send(second, $0.baseAddress, $0.count, 0) }
        #expect(read(second) == Array("echo:".utf8) + message)
        close(first)
        var waited = 0
        while transport.openConnections > 1 && waited < 20 {
            usleep(50_000)
            waited += 1
        }
        let fourth = tcpConnect(tcp)
        defer { close(fourth) }
        _ = message.withUnsafeBytes { send(fourth, $0.baseAddress, $0.count, 0) }
        #expect(read(fourth) == Array("echo:".utf8) + message)
        #expect(transport.statistics.tcpRejectedPerSource.value == 1)
        close(second)
    }

    @Test func aMessageTrickledByteByByteTimesOutWhileAWholeOneDoesNot() throws {
        let transport = try startEcho(idle: 30, messageTimeout: 1)
        defer { transport.stop() }
        let tcp = port(transport, .tcp)
        let slow = tcpConnect(tcp), steady = tcpConnect(tcp)
        defer { close(slow); close(steady) }
        let message = Array("OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n".utf8)
        // One byte every 200 ms: active all along (the idle timeout never fires), never complete.
        var closed = false
        for index in 0..<15 {
            let sent = send(slow, [message[index % 20]], 1, Int32(MSG_NOSIGNAL))
            if sent < 0 { closed = true; break }
            _ = message.withUnsafeBytes { send(steady, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            #expect(read(steady) == Array("echo:".utf8) + message)
            usleep(200_000)
            if transport.statistics.tcpClosedSlow.value > 0 { closed = true; break }
        }
        #expect(closed)
        #expect(transport.statistics.tcpClosedSlow.value == 1)
        #expect(transport.statistics.tcpClosedIdle.value == 0)
        // Whole messages on the other connection kept it open.
        _ = message.withUnsafeBytes { send(steady, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        #expect(read(steady) == Array("echo:".utf8) + message)
    }

    @Test(arguments: [TransportKind.tcp, .udp])
    func bindingAnAddressInUseFailsBeforeListening(_ kind: TransportKind) throws {
        let first = try startEcho()
        defer { first.stop() }
        let taken = first.listenPoints.first { $0.transport == kind }!
        #expect(throws: TransportError.self) {
            _ = try SocketTransport(options: .init(listen: [taken], udpWorkers: 1, udpReceiveBuffer: 1 << 16,
                                                   maxMessageSize: 4096, tcpIdleTimeout: 30, tcpMaxConnections: 4))
        }
    }
}
