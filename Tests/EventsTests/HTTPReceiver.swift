#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A webhook receiver on a real loopback socket: it reads each request whole, keeps it, and answers
/// with the next status of its script (the last one repeats).
final class HTTPReceiver: Sendable {
    struct Request: Sendable {
        var line: String
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let script: Mutex<[Int]>
    private let received = Mutex<[Request]>([])

    init(answering statuses: [Int]) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(listener, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        script = Mutex(statuses)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var url: String { "http://127.0.0.1:\(port)/hooks/tandem?v=1" }
    var requests: [Request] { received.withLock { $0 } }

    func answer(_ statuses: [Int]) { script.withLock { $0 = statuses } }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func serve() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            var data: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            var request: Request?
            while request == nil {
                let count = recv(fd, &chunk, 4096, 0)
                guard count > 0 else { break }
                data.append(contentsOf: chunk[0..<count])
                request = Self.parse(data)
            }
            let status = script.withLock { script -> Int in script.count > 1 ? script.removeFirst() : script.first ?? 200 }
            if let request { received.withLock { $0.append(request) } }
            let answer = "HTTP/1.1 \(status) Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            _ = answer.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            close(fd)
        }
    }

    static func parse(_ data: [UInt8]) -> Request? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0...max(0, data.count - 4)).first(where: { data.count >= 4 && Array(data[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: data[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard data.count >= end + 4 + length else { return nil }
        return Request(line: head[0], headers: headers, body: Array(data[(end + 4)..<(end + 4 + length)]))
    }
}

/// Waits up to `seconds` for `condition`.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    // The monotonic clock: a wait must not depend on the wall clock (tools/clock-check fakes it).
    let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(seconds * 1000)))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
