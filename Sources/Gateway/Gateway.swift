import SIP
import SIPTransport
import Synchronization

/// The proxy: takes complete messages from a transport, validates them, and answers or routes them.
///
/// It receives its transport and logger from the executable (STYLE.md §8), so the same code runs over
/// real sockets and over the in-memory network of the trace tests. Today it answers what it can by
/// itself (OPTIONS, errors); the transaction layer and routing plug in behind `route(_:_:)`.
public final class Gateway: Sendable {
    /// Settings the gateway reads per message; replaced as a whole on reload.
    public struct Settings: Sendable, Equatable {
        public var listen: [ListenPoint]
        public var domain: String?
        public var maxMessageSize: Int
        public var serverHeader: String

        public init(listen: [ListenPoint], domain: String?, maxMessageSize: Int, serverHeader: String) {
            self.listen = listen
            self.domain = domain
            self.maxMessageSize = maxMessageSize
            self.serverHeader = serverHeader
        }

        public init(_ configuration: Configuration) {
            self.init(listen: configuration.listen, domain: configuration.domain,
                      maxMessageSize: configuration.maxMessageSize, serverHeader: configuration.serverHeader)
        }
    }

    /// Methods Tandem handles itself today; `Allow` of its OPTIONS answer.
    public static let allowedMethods = "OPTIONS, ACK, CANCEL"

    public let statistics: GatewayStatistics
    private let transport: any Transport
    private let logger: Logger
    private let settings: Mutex<Settings>
    /// Mixed into stateless To-tags so they cannot be predicted across restarts.
    private let tagSecret: UInt64

    public init(settings: Settings, transport: any Transport, logger: Logger,
                statistics: GatewayStatistics = GatewayStatistics(), tagSecret: UInt64 = UInt64.random(in: 1...UInt64.max)) {
        self.settings = Mutex(settings)
        self.transport = transport
        self.logger = logger
        self.statistics = statistics
        self.tagSecret = tagSecret
    }

    public var currentSettings: Settings { settings.withLock { $0 } }

    /// Swaps the settings in place (SIGHUP); messages in flight finish with the settings they read.
    public func update(_ new: Settings) {
        settings.withLock { $0 = new }
    }

    // MARK: Inbound

    /// Handles one complete message from any transport, to completion, on the calling thread.
    public func receive(_ inbound: InboundMessage) {
        let settings = self.settings.withLock { $0 }
        if inbound.unframeable {
            statistics.unframeable.increment()
            answerUnparsed(inbound, status: 400, reason: "Missing or invalid Content-Length", counter: nil)
            return
        }
        if inbound.exceedsSizeLimit || inbound.bytes.count > settings.maxMessageSize {
            answerUnparsed(inbound, status: 513, reason: "Message Too Large", counter: statistics.oversizedAnswered,
                           dropCounter: statistics.oversizedDropped)
            return
        }
        let message: SIPMessage
        do {
            message = try SIPMessage.parse(inbound.bytes)
        } catch {
            switch error.kind {
            case .truncatedBody:
                statistics.truncatedBody.increment()
                answerUnparsed(inbound, status: 400, reason: error.reason, counter: nil)
            default:
                answerUnparsed(inbound, status: 400, reason: error.reason, counter: statistics.malformedAnswered,
                               dropCounter: statistics.malformedDropped)
            }
            return
        }
        if message.isResponse {
            statistics.responsesReceived.increment()
            // No client transactions exist yet, so every response is stray (RFC 3261 §16.7 / §18.1.2).
            statistics.strayResponses.increment()
            logger.debug("stray response dropped", [("status", String(message.statusCode)), ("from", "\(inbound.source)")])
            return
        }
        statistics.requestsReceived.increment()
        handleRequest(message, inbound, settings)
    }

    private func handleRequest(_ request: SIPMessage, _ inbound: InboundMessage, _ settings: Settings) {
        guard request.topVia != nil else {
            // Without a Via there is nowhere to send a response (RFC 3261 §18.2.2).
            statistics.malformedDropped.increment()
            logger.debug("request without Via dropped", [("from", "\(inbound.source)")])
            return
        }
        request.stampTopVia(sourceHost: inbound.source.host, sourcePort: inbound.source.port)
        let method = request.method ?? ""

        for header in ["From", "To", "Call-ID", "CSeq"] where !request.hasHeader(header) {
            statistics.missingHeader.increment()
            respond(to: request, inbound, status: 400, reason: "Missing \(header) header", settings)
            return
        }
        guard let cseq = request.cseq else {
            statistics.missingHeader.increment()
            respond(to: request, inbound, status: 400, reason: "Invalid CSeq header", settings)
            return
        }
        guard cseq.method == method else {
            statistics.missingHeader.increment()
            respond(to: request, inbound, status: 400, reason: "CSeq method does not match the request", settings)
            return
        }
        if method == "ACK" {
            // An ACK never gets a response (RFC 3261 §17.2.1); with no transaction it ends here.
            statistics.acksAbsorbed.increment()
            return
        }
        let toSelf = isAddressedToSelf(request.requestURI, settings)
        let maxForwards = request.maxForwards
        if method == "OPTIONS" && (toSelf || maxForwards == 0) {
            // §11.2 and §16.3 step 3: a proxy may answer OPTIONS addressed to it or out of hops.
            statistics.optionsAnswered.increment()
            respond(to: request, inbound, status: 200, reason: "OK", settings) { response in
                try response.addHeader("Allow", Self.allowedMethods)
                try response.addHeader("Accept", "application/sdp")
                try response.addHeader("Supported", "")
            }
            return
        }
        if maxForwards == 0 && !toSelf {
            statistics.tooManyHops.increment()
            respond(to: request, inbound, status: 483, reason: "Too Many Hops", settings)
            return
        }
        if method == "CANCEL" {
            statistics.noTransaction.increment()
            respond(to: request, inbound, status: 481, reason: "Call/Transaction Does Not Exist", settings)
            return
        }
        if toSelf {
            statistics.notImplemented.increment()
            respond(to: request, inbound, status: 501, reason: "Not Implemented", settings) { response in
                try response.addHeader("Allow", Self.allowedMethods)
            }
            return
        }
        statistics.notFound.increment()
        respond(to: request, inbound, status: 404, reason: "No Route To Destination", settings)
    }

    /// A Request-URI without a user part whose host is Tandem's domain or one of its listen addresses.
    func isAddressedToSelf(_ uri: SIPURI?, _ settings: Settings) -> Bool {
        guard let uri, uri.user == nil else { return false }
        let host = uri.host.asciiLowercased
        if let domain = settings.domain, host == domain { return true }
        let port = uri.port ?? (uri.scheme == "sips" ? 5061 : 5060)
        return settings.listen.contains { point in
            let listenHost = point.address.host
            let sameHost = listenHost == host || (["0.0.0.0", "::"].contains(listenHost) && (host == "127.0.0.1" || host == "::1"))
            return sameHost && point.address.port == port
        }
    }

    // MARK: Responses

    /// Answers a request statelessly, with a To-tag derived from the request so that a retransmission
    /// gets the identical answer (as Kamailio's `sl` does).
    private func respond(
        to request: SIPMessage, _ inbound: InboundMessage, status: Int, reason: String, _ settings: Settings,
        _ decorate: (SIPMessage) throws -> Void = { _ in }
    ) {
        do {
            let response = try request.makeResponse(status: status, reason: reason, toTag: statelessTag(request))
            if !settings.serverHeader.isEmpty { try response.addHeader("Server", settings.serverHeader) }
            try decorate(response)
            send(response, inbound)
        } catch {
            statistics.sendErrors.increment()
            logger.warning("cannot build response", [("status", String(status)), ("reason", "\(error)")])
        }
    }

    /// Answers bytes libosip2 refused: the Via and dialog headers are salvaged one by one (each parsed
    /// by libosip2); without a readable Via, or for a response, the message is dropped and counted.
    private func answerUnparsed(_ inbound: InboundMessage, status: Int, reason: String,
                                counter: Counter?, dropCounter: Counter? = nil) {
        let looksLikeResponse = inbound.bytes.starts(with: Array("SIP/".utf8))
        let headers = SIPFraming.headerLines(inbound.bytes)
        guard !looksLikeResponse,
              let response = SIPMessage.salvageResponse(status: status, reason: reason, headers: headers,
                                                        toTag: tagFor(headers)) else {
            dropCounter?.increment()
            logger.debug("unanswerable message dropped", [("status", String(status)), ("reason", reason),
                                                          ("from", "\(inbound.source)"), ("bytes", String(inbound.bytes.count))])
            return
        }
        counter?.increment()
        response.stampTopVia(sourceHost: inbound.source.host, sourcePort: inbound.source.port)
        logger.debug("malformed request answered", [("status", String(status)), ("reason", reason), ("from", "\(inbound.source)")])
        send(response, inbound)
    }

    private func send(_ response: SIPMessage, _ inbound: InboundMessage) {
        guard let destination = Self.responseDestination(response.topVia, inbound) else {
            statistics.sendErrors.increment()
            return
        }
        do {
            let bytes = try response.serialized()
            try transport.send(bytes, to: destination)
            statistics.responsesSent.increment()
            logger.debug("response sent", [("status", String(response.statusCode)), ("to", "\(destination.address)")])
        } catch let error as TransportError {
            statistics.sendErrors.increment()
            logger.warning("response not sent", [("to", "\(destination.address)"), ("reason", error.reason)])
        } catch {
            statistics.sendErrors.increment()
            logger.warning("response not serialized", [("reason", "\(error)")])
        }
    }

    /// RFC 3261 §18.2.2 with RFC 3581 §4: over a stream, the connection the request came on; over UDP,
    /// the source address and port when `rport` was asked for, else `received` and the Via port.
    static func responseDestination(_ via: Via?, _ inbound: InboundMessage) -> Destination? {
        switch inbound.transport {
        case .tcp:
            return Destination(transport: .tcp, address: inbound.source, connection: inbound.connection, local: inbound.local)
        case .udp:
            guard let via else { return nil }
            let host = via.received ?? via.host
            let port: Int
            if let rport = via.rport, let value = rport.flatMap({ Int($0) }) {
                port = value
            } else {
                port = via.port ?? 5060
            }
            return Destination(transport: .udp, address: SocketAddress(host: host, port: port), local: inbound.local)
        }
    }

    private func statelessTag(_ request: SIPMessage) -> String {
        tag([request.callID ?? "", request.from?.tag ?? "", request.topVia?.branch ?? ""])
    }

    private func tagFor(_ headers: [(name: String, value: String)]) -> String {
        tag(headers.filter { ["call-id", "via", "from"].contains(HeaderName.canonical($0.name)) }.map(\.value))
    }

    /// FNV-1a over the parts and a per-process secret: a stable, non-cryptographic identifier.
    private func tag(_ parts: [String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ tagSecret
        for part in parts {
            for byte in part.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            hash ^= 0xff
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 36)
    }
}
