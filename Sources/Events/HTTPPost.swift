#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 POST with `Connection: close`, bounded in time at every step: resolving, connecting,
/// writing and reading the status line each give up after `timeout`. Only the status code is read —
/// a webhook's answer is its status.
struct HTTPPost {
    var target: WebhookTarget
    var headers: [(String, String)]
    var body: [UInt8]
    /// Milliseconds.
    var timeout: Int

    enum Failure: Error, CustomStringConvertible {
        case resolve(String)
        case connect(String)
        case io(String)
        case response(String)

        var description: String {
            switch self {
            case .resolve(let reason): "cannot resolve: \(reason)"
            case .connect(let reason): "cannot connect: \(reason)"
            case .io(let reason): "connection failed: \(reason)"
            case .response(let reason): "bad response: \(reason)"
            }
        }
    }

    var request: [UInt8] {
        var head = "POST \(target.path) HTTP/1.1\r\nHost: \(target.hostHeader)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// The status code the receiver answered.
    func send() throws(Failure) -> Int {
        let fd = try connect()
        defer { close(fd) }
        var timeval = timeval(tv_sec: timeout / 1000, tv_usec: Int((timeout % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))
        let bytes = request
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(errno == EAGAIN ? "write timed out" : String(cString: strerror(errno)))
            }
            offset += written
        }
        // The status line: `HTTP/1.1 204 No Content`.
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !received.contains(10), received.count < 8192 {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 1024, 0) }
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw .io(errno == EAGAIN ? "no answer within \(timeout) ms" : String(cString: strerror(errno))) }
            if count == 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        let line = String(decoding: received.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            throw .response(received.isEmpty ? "connection closed without an answer" : "'\(line.prefix(80))' is not an HTTP status line")
        }
        return status
    }

    /// Tries each address of the host in turn, each connect bounded by `timeout`.
    private func connect() throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard status == 0, let first = list else { throw .resolve("\(target.host): \(String(cString: gai_strerror(status)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            next = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            var result = Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen)
            if result < 0, errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, Int32(timeout)) == 1 {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    result = error == 0 ? 0 : -1
                    errno = error
                } else {
                    errno = ETIMEDOUT
                }
            }
            if result == 0 {
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
                return fd
            }
            lastError = "\(target.host):\(target.port): \(String(cString: strerror(errno)))"
            close(fd)
        }
        throw .connect(lastError)
    }
}
