#if canImport(Glibc)
import Glibc
#endif

/// Thin, typed wrappers over the socket calls both listeners need.
enum Socket {
    static func errnoText(_ what: String) -> TransportError {
        TransportError("\(what): \(String(cString: strerror(errno)))")
    }

    static func bound(_ point: ListenPoint, receiveBuffer: Int) throws(TransportError) -> Int32 {
        let family = point.address.isIPv6 ? AF_INET6 : AF_INET
        let type = point.transport == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw errnoText("socket for \(point)") }
        var one: Int32 = 1
        // TCP listeners reuse a port in TIME_WAIT after a restart. UDP sockets must not: on Linux
        // SO_REUSEADDR lets a second process bind the same UDP port and silently split the traffic.
        if point.transport == .tcp {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if family == AF_INET6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if receiveBuffer > 0 {
            var size = Int32(clamping: receiveBuffer)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let result = point.address.withSockAddr { bind(fd, $0, $1) }
        guard result == 0 else {
            let error = errnoText("bind \(point)")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// The address a socket was actually bound to (port 0 → the kernel's choice).
    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        return SocketAddress(&storage)
    }

    static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }
}
