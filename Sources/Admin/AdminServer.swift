#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Foundation
import JSON
import Synchronization

/// Why the admin socket could not start.
public struct AdminServerError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The admin socket: a Unix domain stream socket (mode 0600) and, optionally, a TCP listener on
/// loopback that requires `system.auth` with a token. Newline-delimited JSON-RPC 2.0.
///
/// The admin socket is off the call path, so each client gets its own thread with blocking reads
/// and timed writes: a slow or stuck client blocks only itself, an oversized line is answered and
/// skipped, and past `maxConnections` a newcomer is told so and closed.
public final class AdminServer: Sendable {
    public struct Options: Sendable {
        public var socketPath: String
        /// `HOST:PORT` on loopback, or nil for no TCP listener.
        public var tcpListen: String?
        public var token: String?
        public var maxConnections = 32
        public var maxRequest = 1 << 20
        /// Seconds a client may stay silent before it is disconnected.
        public var idleTimeout = 600
        /// Seconds a write may block on a client that does not read.
        public var writeTimeout = 10
        /// Seconds from a request line's first byte to its newline: a client that trickles a line
        /// byte by byte, or stops half-way, would otherwise hold its thread for ever.
        public var requestTimeout = 10
        public init(socketPath: String, tcpListen: String? = nil, token: String? = nil) {
            self.socketPath = socketPath
            self.tcpListen = tcpListen
            self.token = token
        }
    }

    public let dispatcher: AdminDispatcher
    let options: Options
    private let listeners: [Int32]
    private let stopped = Atomic<Bool>(false)
    private let connections = Mutex<Set<Int32>>([])
    /// The TCP listener's port, once bound (useful with port 0).
    public let tcpPort: Int?

    public init(dispatcher: AdminDispatcher, options: Options) throws(AdminServerError) {
        self.dispatcher = dispatcher
        self.options = options
        var listeners: [Int32] = []
        do throws(AdminServerError) {
            listeners.append(try Self.bindUnix(options.socketPath))
            if let tcp = options.tcpListen {
                guard options.token != nil else { throw AdminServerError(reason: "admin.listen needs admin.token") }
                let (fd, port) = try Self.bindTCP(tcp)
                listeners.append(fd)
                tcpPort = port
            } else {
                tcpPort = nil
            }
        } catch {
            for fd in listeners { close(fd) }
            throw error
        }
        self.listeners = listeners
    }

    public func start() {
        for (index, fd) in listeners.enumerated() {
            let isTCP = index > 0
            let thread = Thread { [self] in acceptLoop(fd, isTCP: isTCP) }
            thread.name = isTCP ? "admin-tcp" : "admin-unix"
            thread.start()
        }
    }

    /// Stops accepting, disconnects every client and removes the socket file.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for fd in listeners { shutdown(fd, Int32(SHUT_RDWR)) }
        connections.withLock { open in for fd in open { shutdown(fd, Int32(SHUT_RDWR)) } }
        unlink(options.socketPath)
    }

    // MARK: Listening

    static func bindUnix(_ path: String) throws(AdminServerError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw AdminServerError(reason: "admin.socket path is longer than \(capacity - 1) bytes: \(path)") }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw AdminServerError(reason: "\(path) exists and is not a socket") }
            // A live socket belongs to another running Tandem; a dead one is left from a crash.
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let inUse = withAddress(path) { connect(probe, $0, $1) } == 0
            close(probe)
            if inUse { throw AdminServerError(reason: "\(path) is in use by another process") }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AdminServerError(reason: "socket: \(String(cString: strerror(errno)))") }
        // Created 0600 from the start: no window in which others could connect.
        let previous = umask(0o177)
        let bound = withAddress(path) { bind(fd, $0, $1) }
        umask(previous)
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AdminServerError(reason: "cannot bind admin socket \(path): \(reason)")
        }
        chmod(path, 0o600)
        guard listen(fd, 64) == 0 else {
            close(fd)
            throw AdminServerError(reason: "listen on \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// `127.0.0.1:PORT` or `[::1]:PORT`: the TCP listener is for local tools and tunnels only.
    static func bindTCP(_ text: String) throws(AdminServerError) -> (Int32, Int) {
        let endpoint = try TCPEndpoint(parsing: text)
        guard endpoint.isLoopback else { throw AdminServerError(reason: "admin.listen must be a loopback address, not \(endpoint.host)") }
        let fd = try endpoint.socket { fd, address, length in
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            return bind(fd, address, length)
        }
        guard listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AdminServerError(reason: "cannot listen on \(text): \(reason)")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let boundPort = withUnsafePointer(to: &bound) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return (fd, Int(boundPort))
    }

    private func acceptLoop(_ listener: Int32, isTCP: Bool) {
        while !stopped.load(ordering: .acquiring) {
            let fd = tandem_accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if stopped.load(ordering: .acquiring) { break }
                usleep(10_000)
                continue
            }
            let admitted = connections.withLock { open -> Bool in
                guard open.count < options.maxConnections else { return false }
                open.insert(fd)
                return true
            }
            guard admitted else {
                dispatcher.statistics.connectionsRefused.add(1, ordering: .relaxed)
                setTimeout(fd, SO_SNDTIMEO, seconds: 1)
                let busy = AdminDispatcher.response(id: .null, error: RPCError(code: RPCError.busyCode, message: "Busy",
                    data: ["reason": .string("admin.max_connections (\(options.maxConnections)) clients are connected")]))
                _ = Self.writeAll(fd, Array((busy.description + "\n").utf8))
                close(fd)
                continue
            }
            dispatcher.statistics.connectionsAccepted.add(1, ordering: .relaxed)
            dispatcher.statistics.connectionsOpen.add(1, ordering: .relaxed)
            let thread = Thread { [self] in
                let connection = AdminConnection(fd)
                serve(connection, token: isTCP ? options.token : nil)
                connections.withLock { _ = $0.remove(fd) }
                connection.close()
                dispatcher.statistics.connectionsOpen.subtract(1, ordering: .relaxed)
            }
            thread.name = "admin-client"
            thread.start()
        }
        close(listener)
    }

    private func setTimeout(_ fd: Int32, _ option: Int32, seconds: Int) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes everything or gives up: a write that times out means the client stopped reading.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    private func serve(_ connection: AdminConnection, token: String?) {
        let fd = connection.fd
        setTimeout(fd, SO_RCVTIMEO, seconds: options.idleTimeout)
        setTimeout(fd, SO_SNDTIMEO, seconds: options.writeTimeout)
        let write: @Sendable (String) -> Void = { connection.write($0) }
        let session = AdminSession(token: token) { connection.notify($0.description) }
        defer { session.close() }
        var pending: [UInt8] = []
        var discarding = false
        func tooLarge() {
            dispatcher.statistics.oversizedRequests.add(1, ordering: .relaxed)
            write(AdminDispatcher.response(id: .null, error: RPCError(code: RPCError.tooLargeCode, message: "Request too large",
                data: ["reason": .string("a request line may hold at most \(options.maxRequest) bytes (admin.max_request); it was discarded")])).description)
        }
        var chunk = [UInt8](repeating: 0, count: 65_536)
        // When the line being read began (nil between lines): its deadline is `requestTimeout` on,
        // and the socket's receive timeout is shortened to it so a trickle cannot extend it.
        var lineStarted: ContinuousClock.Instant?
        var receiveTimeout = options.idleTimeout
        while !connection.isBroken, !stopped.load(ordering: .relaxed) {
            if let lineStarted {
                let left = options.requestTimeout - Int((ContinuousClock.now - lineStarted).components.seconds)
                guard left > 0 else {
                    dispatcher.statistics.incompleteRequests.add(1, ordering: .relaxed)
                    write(AdminDispatcher.response(id: .null, error: RPCError(code: RPCError.incompleteCode, message: "Request incomplete",
                        data: ["reason": .string("a request line must end with a newline within \(options.requestTimeout) s of its first byte (admin.request_timeout); the connection is closed")])).description)
                    return
                }
                if left != receiveTimeout { receiveTimeout = left; setTimeout(fd, SO_RCVTIMEO, seconds: receiveTimeout) }
            } else if receiveTimeout != options.idleTimeout {
                receiveTimeout = options.idleTimeout
                setTimeout(fd, SO_RCVTIMEO, seconds: receiveTimeout)
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65_536, 0) }
            if count < 0, errno == EINTR { continue }
            if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
                // The line's deadline: checked at the top of the loop.
                if lineStarted != nil { continue }
                // A push subscriber or a registered service listens without speaking: silence is not idleness.
                if session.isListening { continue }
            }
            guard count > 0 else { return }
            var start = 0
            for index in 0..<count where chunk[index] == 10 {
                if discarding {
                    discarding = false
                } else {
                    pending.append(contentsOf: chunk[start..<index])
                    if pending.count > options.maxRequest { tooLarge() } else { handleLine(pending, session: session, connection: connection) }
                }
                pending.removeAll(keepingCapacity: true)
                start = index + 1
                lineStarted = nil
            }
            if start < count, lineStarted == nil { lineStarted = .now }
            if !discarding { pending.append(contentsOf: chunk[start..<count]) }
            if pending.count > options.maxRequest {
                tooLarge()
                pending.removeAll()
                discarding = true
            }
        }
    }

    private func handleLine(_ line: [UInt8], session: AdminSession, connection: AdminConnection) {
        var bytes = line
        if bytes.last == 13 { bytes.removeLast() }
        guard bytes.contains(where: { ![32, 9].contains($0) }) else { return }
        // Notifications a request starts (a subscription's backlog) wait for its answer, which
        // tells the client the subscription's id.
        connection.hold()
        connection.release(answer: dispatcher.handle(bytes, session: session))
    }
}

/// One admin client's socket. Writes and the close are serialised under one lock, so nothing is
/// written once the descriptor is closed: its number goes to the next client that connects, and a
/// notification still on its way from the event dispatcher must not reach that client.
final class AdminConnection: Sendable {
    let fd: Int32
    private struct State {
        var closed = false
        var broken = false
        /// Notifications held while a request is handled; nil when none is.
        var held: [String]?
    }
    private let state = Mutex(State())

    init(_ fd: Int32) { self.fd = fd }

    var isBroken: Bool { state.withLock { $0.broken || $0.closed } }

    /// An answer or an error of the connection's own; dropped once the connection is closed or broken.
    func write(_ line: String) {
        state.withLock { state in send(line, &state) }
    }

    /// A notification: held behind the answer of the request being handled, if any.
    func notify(_ line: String) {
        state.withLock { state in
            if state.held != nil { state.held!.append(line) } else { send(line, &state) }
        }
    }

    func hold() {
        state.withLock { state in if state.held == nil { state.held = [] } }
    }

    /// Writes the answer (if the request had one), then what was held meanwhile, in order.
    func release(answer: String?) {
        state.withLock { state in
            if let answer { send(answer, &state) }
            for line in state.held ?? [] { send(line, &state) }
            state.held = nil
        }
    }

    func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            state.held = nil
            Glibc.close(fd)
        }
    }

    /// A write that fails or times out means the client stopped reading: the connection is shut.
    private func send(_ line: String, _ state: inout State) {
        guard !state.closed, !state.broken else { return }
        if !AdminServer.writeAll(fd, Array((line + "\n").utf8)) {
            state.broken = true
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }
}
