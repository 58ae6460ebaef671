#if canImport(Glibc)
import Glibc
#endif
import JSON

/// A client of the admin socket, for `tandemctl`, the tests and the benchmarks: connects over the
/// Unix socket or loopback TCP, sends one line, reads lines back.
public final class AdminClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var nextID: Int64 = 1

    public init(socketPath: String) throws(AdminServerError) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard AdminServer.withAddress(socketPath, { connect(fd, $0, $1) }) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AdminServerError(reason: "cannot connect to \(socketPath): \(reason)")
        }
    }

    /// `HOST:PORT` over TCP.
    public init(tcp text: String) throws(AdminServerError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw AdminServerError(reason: "'\(text)' is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        var result: Int32 = -1
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            result = withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            result = withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            throw AdminServerError(reason: "'\(host)' is not an IP address")
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AdminServerError(reason: "cannot connect to \(text): \(reason)")
        }
    }

    deinit { close(fd) }

    /// Sends one raw line.
    public func send(line: String) throws(AdminServerError) {
        guard AdminServer.writeAll(fd, Array((line + "\n").utf8)) else {
            throw AdminServerError(reason: "the connection closed: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads one line; nil when the server closed the connection.
    public func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65_536, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    /// Calls `method` and returns its response object; notifications that arrive first go to `notification`.
    public func call(_ method: String, _ params: JSONValue = [:],
                     notification: (JSONValue) -> Void = { _ in }) throws(AdminServerError) -> JSONValue {
        let id = nextID
        nextID += 1
        let request: JSONValue = ["jsonrpc": "2.0", "id": .integer(id), "method": .string(method), "params": params]
        try send(line: request.description)
        while true {
            guard let line = readLine() else { throw AdminServerError(reason: "the server closed the connection") }
            guard let message = try? JSONValue.parse(line) else { throw AdminServerError(reason: "unreadable answer: \(line)") }
            if message["id"] == nil, message["method"] != nil { notification(message); continue }
            return message
        }
    }
}
