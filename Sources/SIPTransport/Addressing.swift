#if canImport(Glibc)
import Glibc
#endif

/// The transports Tandem speaks.
public enum TransportKind: String, Sendable, Hashable, CaseIterable {
    case udp, tcp

    /// As written in a Via sent-by (`SIP/2.0/UDP`).
    public var viaName: String { rawValue.uppercased() }
}

/// An IP address and port, IPv4 or IPv6, kept in text form so it can be hashed and logged.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var isIPv6: Bool { host.utf8.contains(58) }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with brackets around an IPv6 host (RFC 3261 §25.1 `hostport`).
    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether the host is a valid IPv4 or IPv6 literal.
    public var isNumeric: Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Lends the address as a `sockaddr` for a system call; `nil` if the host is not an IP literal.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R? {
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { return nil }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }

    /// Reads an address filled in by `recvfrom`, `accept` or `getsockname`.
    public init?(_ storage: UnsafePointer<sockaddr_storage>) {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let result: SocketAddress? = storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin_addr
                guard inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
                return SocketAddress(host: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: Int(UInt16(bigEndian: pointer.pointee.sin_port)))
            }
            guard let result else { return nil }
            self = result
        case AF_INET6:
            let result: SocketAddress? = storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                var address = pointer.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
                return SocketAddress(host: String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: Int(UInt16(bigEndian: pointer.pointee.sin6_port)))
            }
            guard let result else { return nil }
            self = result
        default:
            return nil
        }
    }
}

/// One address Tandem listens on: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`.
public struct ListenPoint: Sendable, Hashable, CustomStringConvertible {
    public var transport: TransportKind
    public var address: SocketAddress

    public init(transport: TransportKind, address: SocketAddress) {
        self.transport = transport
        self.address = address
    }

    /// Parses `transport:host[:port]`; the port defaults to 5060 (RFC 3261 §19.1.2).
    public init(parsing text: String) throws(TransportError) {
        let trimmed = text.filter { $0 != " " && $0 != "\t" }
        guard let colon = trimmed.firstIndex(of: ":") else {
            throw TransportError("'\(text)' has no transport; write udp:HOST:PORT or tcp:HOST:PORT")
        }
        guard let transport = TransportKind(rawValue: trimmed[..<colon].lowercased()) else {
            throw TransportError("unknown transport '\(trimmed[..<colon])' in '\(text)' (udp or tcp)")
        }
        let rest = trimmed[trimmed.index(after: colon)...]
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw TransportError("unclosed '[' in '\(text)'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw TransportError("unexpected '\(after)' after the address in '\(text)'")
            }
        } else if let portColon = rest.lastIndex(of: ":"), rest.filter({ $0 == ":" }).count == 1 {
            host = rest[..<portColon]
            portText = rest[rest.index(after: portColon)...]
        } else {
            host = rest
        }
        var port = 5060
        if let portText {
            guard let value = Int(portText), (0...65535).contains(value) else {
                throw TransportError("port '\(portText)' in '\(text)' is not a number from 0 to 65535")
            }
            port = value
        }
        let address = SocketAddress(host: String(host), port: port)
        guard address.isNumeric else {
            throw TransportError("'\(host)' in '\(text)' is not an IPv4 or IPv6 address")
        }
        self.init(transport: transport, address: address)
    }

    public var description: String { "\(transport.rawValue):\(address)" }
}

/// Identifies one accepted or opened TCP connection for the life of the process.
public struct ConnectionID: Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "conn#\(rawValue)" }
}

/// A complete message as a transport delivers it.
public struct InboundMessage: Sendable {
    public var bytes: [UInt8]
    public var transport: TransportKind
    public var source: SocketAddress
    /// The listen point it arrived on.
    public var local: ListenPoint
    /// The TCP connection it arrived on; responses go back on it (RFC 3261 §18.2.2).
    public var connection: ConnectionID?
    /// A stream message whose announced size exceeds `sip.max_message_size`; `bytes` is its header
    /// section only, enough to answer 513 before the connection closes.
    public var exceedsSizeLimit = false
    /// Stream bytes that cannot be framed (no usable Content-Length); the connection closes.
    public var unframeable = false

    public init(bytes: [UInt8], transport: TransportKind, source: SocketAddress, local: ListenPoint, connection: ConnectionID?) {
        self.bytes = bytes
        self.transport = transport
        self.source = source
        self.local = local
        self.connection = connection
    }
}

/// Where to send bytes.
public struct Destination: Sendable, Hashable {
    public var transport: TransportKind
    public var address: SocketAddress
    /// For TCP: the connection to use, when the message answers one that came in on it.
    public var connection: ConnectionID?
    /// The listen point to send from (UDP) — the one the request arrived on, so NATs see one flow.
    public var local: ListenPoint?

    public init(transport: TransportKind, address: SocketAddress, connection: ConnectionID? = nil, local: ListenPoint? = nil) {
        self.transport = transport
        self.address = address
        self.connection = connection
        self.local = local
    }
}

/// A transport failure with a reason an operator can act on.
public struct TransportError: Error, Sendable, CustomStringConvertible, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Sends bytes; the gateway's only way out. Real sockets and the in-memory test network both conform.
public protocol Transport: Sendable {
    func send(_ bytes: [UInt8], to destination: Destination) throws(TransportError)
    /// Closes a stream connection (after garbage or an oversized message).
    func close(_ connection: ConnectionID)
}
