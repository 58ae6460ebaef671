#if canImport(Glibc)
import Glibc
#endif
import CLinux
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
        fd = try TCPEndpoint(parsing: text).socket { fd, address, length in connect(fd, address, length) }
    }

    deinit { close(fd) }

    /// Sends one raw line.
    public func send(line: String) throws(AdminServerError) {
        guard AdminServer.writeAll(fd, Array((line + "\n").utf8)) else {
            throw AdminServerError(reason: "the connection closed: \(String(cString: strerror(errno)))")
        }
    }

    /// Sends bytes as they are, with no newline added (a line in pieces).
    public func send(raw bytes: [UInt8]) throws(AdminServerError) {
        guard AdminServer.writeAll(fd, bytes) else {
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

@available(*, unavailable, message: "An AdminClient's connection and read buffer belong to one thread")
extension AdminClient: Sendable {}
