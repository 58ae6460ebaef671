import SIP

/// Splits a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3), across partial
/// reads and pipelined messages. A pure value: the connection loop feeds it bytes.
public struct StreamFramer: Sendable {
    public enum Frame: Sendable, Equatable {
        case message([UInt8])
        /// A CRLF CRLF keep-alive ping (RFC 5626 §3.5.1); answer with a CRLF pong.
        case ping
        /// The peer sent more than the limit; the connection must be closed. `head` is the header
        /// section when it was complete, so a 513 can still be answered.
        case oversized(head: [UInt8]?)
        /// The stream cannot be framed (no usable Content-Length); the connection must be closed.
        case malformed(head: [UInt8], reason: String)
    }

    public let maxMessageSize: Int
    private var buffer: [UInt8] = []
    private var failed = false

    public init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    /// Bytes buffered but not yet framed.
    public var pendingCount: Int { buffer.count }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or `nil` when more bytes are needed.
    public mutating func next() -> Frame? {
        guard !failed else { return nil }
        // Leading CRLFs between messages: a double CRLF is a ping, a single one is a pong or padding
        // (RFC 5626 §3.5.1, RFC 3261 §7.5).
        var skipped = 0
        while skipped + 1 < buffer.count, buffer[skipped] == 0x0D, buffer[skipped + 1] == 0x0A {
            if skipped + 3 < buffer.count, buffer[skipped + 2] == 0x0D, buffer[skipped + 3] == 0x0A {
                buffer.removeFirst(skipped + 4)
                return .ping
            }
            skipped += 2
        }
        if skipped > 0 {
            // Wait to see whether a second CRLF follows before discarding a lone one.
            if skipped == buffer.count { return nil }
            buffer.removeFirst(skipped)
        }
        guard !buffer.isEmpty else { return nil }

        guard let headLength = SIPFraming.headerSectionLength(buffer) else {
            if buffer.count > maxMessageSize {
                failed = true
                return .oversized(head: nil)
            }
            return nil
        }
        let head = Array(buffer[..<headLength])
        let lengths = SIPFraming.headerLines(head).filter { HeaderName.same($0.name, "Content-Length") }
        guard let lengthText = lengths.first?.value else {
            failed = true
            return .malformed(head: head, reason: "Missing Content-Length on a stream transport")
        }
        guard lengths.allSatisfy({ $0.value == lengthText }), let bodyLength = SIPFraming.contentLength(lengthText) else {
            failed = true
            return .malformed(head: head, reason: "Invalid Content-Length")
        }
        let total = headLength + bodyLength
        if total > maxMessageSize {
            failed = true
            return .oversized(head: head)
        }
        guard buffer.count >= total else { return nil }
        let message = Array(buffer[..<total])
        buffer.removeFirst(total)
        return .message(message)
    }
}

extension StreamFramer.Frame {
    /// What a stream connection does with a frame: shared by the TCP engine and the in-memory test
    /// network, so both treat pings, oversized and unframeable input the same way.
    public struct Disposition: Sendable {
        /// The message to hand to the gateway, if any.
        public var message: InboundMessage?
        /// Bytes to write back at once (a keep-alive pong).
        public var reply: [UInt8]?
        /// Whether the connection must close after the message is handled.
        public var close: Bool
    }

    public func disposition(source: SocketAddress, local: ListenPoint, connection: ConnectionID) -> Disposition {
        switch self {
        case .message(let bytes):
            return Disposition(
                message: InboundMessage(bytes: bytes, transport: .tcp, source: source, local: local, connection: connection),
                reply: nil, close: false)
        case .ping:
            // RFC 5626 §3.5.1: answer a CRLF CRLF ping with a single CRLF pong.
            return Disposition(message: nil, reply: [0x0D, 0x0A], close: false)
        case .oversized(let head):
            var message = head.map {
                InboundMessage(bytes: $0, transport: .tcp, source: source, local: local, connection: connection)
            }
            message?.exceedsSizeLimit = true
            return Disposition(message: message, reply: nil, close: true)
        case .malformed(let head, _):
            var message = InboundMessage(bytes: head, transport: .tcp, source: source, local: local, connection: connection)
            message.unframeable = true
            return Disposition(message: message, reply: nil, close: true)
        }
    }
}
