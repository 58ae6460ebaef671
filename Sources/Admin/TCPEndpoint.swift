#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation

/// `HOST:PORT` of the admin TCP listener: an IPv4 or IPv6 literal (brackets allowed) or localhost.
struct TCPEndpoint {
    var host: String
    var port: UInt16

    init(parsing text: String) throws(AdminServerError) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw AdminServerError(reason: "'\(text)' is not HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
    }

    var isLoopback: Bool { host.hasPrefix("127.") || host == "::1" }

    /// A new stream socket of the endpoint's family, and `body` (bind or connect) run on it with the
    /// endpoint's address; the socket is closed when `body` fails.
    func socket(_ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) throws(AdminServerError) -> Int32 {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let fd: Int32
        let result: Int32
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            result = withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            fd = Glibc.socket(AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            result = withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            throw AdminServerError(reason: "'\(host)' is not an IP address")
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AdminServerError(reason: "[\(host)]:\(port): \(reason)")
        }
        return fd
    }
}
