import Routing
import Crypto
import Foundation
import Registrar
import Registry
import SIP
import SIPTransaction
import SIPTransport

/// A configuration problem, located by file and line (or by the `--set` option that caused it).
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var reason: String

    public init(file: String, line: Int?, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        if let line { return "\(file):\(line): \(reason)" }
        return "\(file): \(reason)"
    }
}

/// Tandem's settings, read from an INI file (`Config/tandem.conf`) plus `--set section.key=value`
/// overrides. Every key is listed in `Configuration.keys` and documented in docs/configuration.md.
public struct Configuration: Sendable, Equatable {
    // [sip]
    public var listen: [ListenPoint] = [
        ListenPoint(transport: .udp, address: SocketAddress(host: "127.0.0.1", port: 5060)),
        ListenPoint(transport: .tcp, address: SocketAddress(host: "127.0.0.1", port: 5060)),
    ]
    public var domain: String? = nil
    public var advertise: String? = nil
    public var maxMessageSize = 65_535
    public var udpWorkers = 0
    public var udpReceiveBuffer = 4 << 20
    public var tcpIdleTimeout = 120.0
    public var tcpMaxConnections = 4_096
    public var tcpMaxConnectionsPerSource = 128
    public var tcpMessageTimeout = 10.0
    public var serverHeader = "Tandem/\(TandemVersion.current)"
    public var timers = TransactionTimers()
    public var maxTransactions = 200_000
    // [routing]
    public var defaultRoute: [SIPURI] = []
    public var fork = ForkMode.parallel
    public var serialTimeout = 20.0
    public var dialplanDirectory: String? = "Dialplans"
    public var userDialplan: String? = "users"
    public var providerDialplan: String? = "inbound"
    public var peerDialplan: String? = nil
    public var maxTransfers = 3
    // [cdr]
    public var maxCallDuration = 14_400
    // [events]
    public var eventSubscriberQueue = 1_000
    public var webhookTimeout = 5_000
    public var webhookAttempts = 10
    public var webhookBackoff = 1_000
    public var webhookMaxBackoff = 300_000
    // [storage]
    public var storagePath = "var/tandem.db"
    // [admin]
    public var adminSocket = "var/tandem.sock"
    public var adminListen: String? = nil
    public var adminToken: String? = nil
    public var adminMaxConnections = 32
    public var adminMaxRequest = 1 << 20
    public var adminIdleTimeout = 600
    public var adminRequestTimeout = 10
    // [auth]
    public var realm: String? = nil
    public var authSecret: String? = nil
    public var nonceLifetime = 300
    public var digestAlgorithms: [DigestAlgorithm] = [.sha256, .md5]
    public var trustedSources: [AddressBlock] = []
    public var banPolicy = BanPolicy()
    public var floodPolicy = FloodPolicy()
    // [registrar]
    public var registrar = RegistrarPolicy()
    public var registrarPersistence = Location.Persistence.batched
    // [presence]
    public var presence = PresencePolicy()
    // [security]
    public var blockedUserAgents: [String] = Configuration.defaultBlockedUserAgents
    public static let defaultBlockedUserAgents = ["friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sipsak", "vaxsipuseragent", "iwar", "sivus", "sundayddr"]

    /// The digest realm: `auth.realm`, else `sip.domain`, else "tandem".
    public var effectiveRealm: String { realm ?? domain ?? "tandem" }
    // [log]
    public var logLevel = LogLevel.info

    public init() {}

    /// One configuration key: its name, default as written in the file, meaning, and how to apply a value.
    public struct Key: Sendable {
        public let name: String
        public let defaultText: String
        public let summary: String
        let apply: @Sendable (inout Configuration, String) throws(KeyError) -> Void
    }

    struct KeyError: Error { var reason: String }

    /// Every key Tandem understands. docs/configuration.md is checked against this list by the tests.
    public static let keys: [Key] = [
        Key(name: "sip.listen", defaultText: "udp:127.0.0.1:5060, tcp:127.0.0.1:5060",
            summary: "Comma-separated listen points, `udp:HOST:PORT` or `tcp:HOST:PORT`; IPv6 hosts in brackets.") {
            config, value throws(KeyError) in
            let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !items.isEmpty else { throw KeyError(reason: "at least one listen point is required") }
            var points: [ListenPoint] = []
            for item in items {
                do { points.append(try ListenPoint(parsing: item)) } catch let error as TransportError { throw KeyError(reason: error.reason) } catch { throw KeyError(reason: "\(error)") }
            }
            guard Set(points).count == points.count else { throw KeyError(reason: "a listen point is listed twice") }
            config.listen = points
        },
        Key(name: "sip.domain", defaultText: "(empty)",
            summary: "The SIP domain Tandem serves; requests whose Request-URI host is this domain (or a listen address) are addressed to Tandem itself.") {
            config, value throws(KeyError) in
            config.domain = value.isEmpty ? nil : value.lowercased()
        },
        Key(name: "sip.advertise", defaultText: "(empty)",
            summary: "The address Tandem puts in its Via and Record-Route headers instead of the listen address; required when listening on 0.0.0.0 or ::.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { config.advertise = nil; return }
            guard !value.contains(" "), !value.contains(";"), !value.contains(","), !value.contains("@") else {
                throw KeyError(reason: "'\(value)' is not a host name or IP address")
            }
            config.advertise = value.hasPrefix("[") && value.hasSuffix("]") ? String(value.dropFirst().dropLast()) : value
        },
        Key(name: "sip.max_message_size", defaultText: "65535",
            summary: "Largest message accepted, in bytes; larger UDP requests get 513, larger TCP messages close the connection after a 513.") {
            config, value throws(KeyError) in
            config.maxMessageSize = try integer(value, in: 512...65_535)
        },
        Key(name: "sip.udp_workers", defaultText: "0",
            summary: "Threads reading each UDP socket; 0 means one per CPU core.") {
            config, value throws(KeyError) in
            config.udpWorkers = try integer(value, in: 0...256)
        },
        Key(name: "sip.udp_receive_buffer", defaultText: "4194304",
            summary: "SO_RCVBUF for UDP sockets, in bytes (the kernel caps it at net.core.rmem_max).") {
            config, value throws(KeyError) in
            config.udpReceiveBuffer = try integer(value, in: 65_536...(1 << 30))
        },
        Key(name: "sip.tcp_idle_timeout", defaultText: "120",
            summary: "Seconds a TCP connection may stay silent before Tandem closes it.") {
            config, value throws(KeyError) in
            config.tcpIdleTimeout = Double(try integer(value, in: 1...86_400))
        },
        Key(name: "sip.tcp_max_connections", defaultText: "4096",
            summary: "Most TCP connections open at once; connections beyond it are closed on accept.") {
            config, value throws(KeyError) in
            config.tcpMaxConnections = try integer(value, in: 1...1_000_000)
        },
        Key(name: "sip.tcp_max_connections_per_source", defaultText: "128",
            summary: "Most TCP connections one remote address may open to Tandem; connections beyond it are closed on accept (counted as tcp.rejected_per_source). Connections Tandem opens are not counted. 0: no limit per address.") {
            config, value throws(KeyError) in
            config.tcpMaxConnectionsPerSource = try integer(value, in: 0...1_000_000)
        },
        Key(name: "sip.tcp_message_timeout", defaultText: "10",
            summary: "Seconds a message on TCP may take to arrive once its first byte has; a connection holding part of a message longer is closed (counted as tcp.closed_slow), so a peer sending a byte at a time cannot hold it open.") {
            config, value throws(KeyError) in
            config.tcpMessageTimeout = Double(try integer(value, in: 1...3_600))
        },
        Key(name: "sip.server_header", defaultText: "Tandem/VERSION",
            summary: "Value of the Server header on responses Tandem generates; empty to send none.") {
            config, value throws(KeyError) in
            config.serverHeader = value
        },
        Key(name: "sip.t1", defaultText: "500",
            summary: "RFC 3261 T1 in milliseconds: the round-trip estimate that paces retransmissions (Timers A, E, G) and sets Timers B, F, H, J to 64·T1.") {
            config, value throws(KeyError) in
            config.timers.t1 = Double(try integer(value, in: 10...10_000)) / 1000
        },
        Key(name: "sip.t2", defaultText: "4000",
            summary: "RFC 3261 T2 in milliseconds: the longest retransmission interval.") {
            config, value throws(KeyError) in
            config.timers.t2 = Double(try integer(value, in: 100...60_000)) / 1000
        },
        Key(name: "sip.t4", defaultText: "5000",
            summary: "RFC 3261 T4 in milliseconds: how long a message may live in the network (Timers I and K).") {
            config, value throws(KeyError) in
            config.timers.t4 = Double(try integer(value, in: 100...60_000)) / 1000
        },
        Key(name: "sip.timer_c", defaultText: "180",
            summary: "Timer C in seconds (RFC 3261 §16.6 step 11): an INVITE branch with no final response is cancelled after this long, restarted by each provisional response.") {
            config, value throws(KeyError) in
            config.timers.timerC = Double(try integer(value, in: 1...3_600))
        },
        Key(name: "sip.max_transactions", defaultText: "200000",
            summary: "Most server transactions held at once; a new request beyond it is answered 503 with Retry-After.") {
            config, value throws(KeyError) in
            config.maxTransactions = try integer(value, in: 1...10_000_000)
        },
        Key(name: "routing.default_route", defaultText: "(empty)",
            summary: "Comma-separated SIP URIs where requests not addressed to Tandem are forwarded, in order; empty answers them 404.") {
            config, value throws(KeyError) in
            var routes: [SIPURI] = []
            for item in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                let text = item.hasPrefix("<") && item.hasSuffix(">") ? String(item.dropFirst().dropLast()) : item
                switch SIPURI.nextHop(text) {
                case .success(let uri): routes.append(uri)
                case .failure(let error): throw KeyError(reason: error.reason)
                }
            }
            config.defaultRoute = routes
        },
        Key(name: "routing.fork", defaultText: "parallel",
            summary: "With several default routes: `parallel` rings all at once, `serial` tries them in order.") {
            config, value throws(KeyError) in
            guard let mode = ForkMode(rawValue: value.lowercased()) else {
                throw KeyError(reason: "'\(value)' is not parallel or serial")
            }
            config.fork = mode
        },
        Key(name: "routing.serial_timeout", defaultText: "20",
            summary: "Seconds a serial-fork target may ring before the next one is tried.") {
            config, value throws(KeyError) in
            config.serialTimeout = Double(try integer(value, in: 1...3_600))
        },
        Key(name: "routing.dialplans", defaultText: "Dialplans",
            summary: "Folder of `*.dialplan` files (docs/dialplans.md), read at start, on SIGHUP and on `dialplan.reload`; empty loads none.") {
            config, value throws(KeyError) in
            config.dialplanDirectory = value.isEmpty ? nil : value
        },
        Key(name: "routing.user_dialplan", defaultText: "users",
            summary: "Dialplan for numbers dialled by Tandem's own users; empty keeps them as dialled.") {
            config, value throws(KeyError) in
            config.userDialplan = try dialplanName(value)
        },
        Key(name: "routing.provider_dialplan", defaultText: "inbound",
            summary: "Dialplan for calls from providers' trusted sources (carriers delivering calls, apps); empty keeps them as dialled.") {
            config, value throws(KeyError) in
            config.providerDialplan = try dialplanName(value)
        },
        Key(name: "routing.peer_dialplan", defaultText: "(empty)",
            summary: "Dialplan for calls from `auth.trusted_sources` peers; empty keeps them as dialled.") {
            config, value throws(KeyError) in
            config.peerDialplan = try dialplanName(value)
        },
        Key(name: "routing.max_transfers", defaultText: "3",
            summary: "Most transfers (proxied transfer modes) one call follows before it is refused 482.") {
            config, value throws(KeyError) in
            config.maxTransfers = try integer(value, in: 0...10)
        },
        Key(name: "cdr.max_call_duration", defaultText: "14400",
            summary: "Seconds an answered call may last without a BYE through Tandem before its record is closed as `timeout` (docs/cdr.md).") {
            config, value throws(KeyError) in
            config.maxCallDuration = try integer(value, in: 60...604_800)
        },
        Key(name: "events.subscriber_queue", defaultText: "1000",
            summary: "Events a push subscriber (`events.subscribe`) may have waiting; past it the subscriber is switched to pull with an `events.overflow` notice (docs/events.md).") {
            config, value throws(KeyError) in
            config.eventSubscriberQueue = try integer(value, in: 1...1_000_000)
        },
        Key(name: "events.webhook_timeout", defaultText: "5000",
            summary: "Milliseconds a webhook attempt may take per step (connect, send, status line) before it counts as failed.") {
            config, value throws(KeyError) in
            config.webhookTimeout = try integer(value, in: 100...120_000)
        },
        Key(name: "events.webhook_attempts", defaultText: "10",
            summary: "Attempts at one webhook delivery before it is marked `failed` (`events.redeliver` queues it again).") {
            config, value throws(KeyError) in
            config.webhookAttempts = try integer(value, in: 1...100)
        },
        Key(name: "events.webhook_backoff", defaultText: "1000",
            summary: "Milliseconds before the first retry of a failed webhook delivery; each further retry waits twice as long.") {
            config, value throws(KeyError) in
            config.webhookBackoff = try integer(value, in: 10...3_600_000)
        },
        Key(name: "events.webhook_max_backoff", defaultText: "300000",
            summary: "The longest wait between webhook retries, in milliseconds.") {
            config, value throws(KeyError) in
            config.webhookMaxBackoff = try integer(value, in: 10...86_400_000)
        },
        Key(name: "storage.path", defaultText: "var/tandem.db",
            summary: "The SQLite database file, relative to the working directory; its folder is created if missing.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { throw KeyError(reason: "a database path is required") }
            config.storagePath = value
        },
        Key(name: "admin.socket", defaultText: "var/tandem.sock",
            summary: "Path of the admin Unix socket (mode 0600), relative to the working directory; its folder is created if missing.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { throw KeyError(reason: "a socket path is required") }
            guard value.utf8.count < 108 else { throw KeyError(reason: "longer than 107 bytes, the limit of a Unix socket path") }
            config.adminSocket = value
        },
        Key(name: "admin.listen", defaultText: "(empty)",
            summary: "`HOST:PORT` of an optional TCP admin listener, on loopback only (127.0.0.1 or [::1]); needs admin.token. Empty: none.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { config.adminListen = nil; return }
            guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (0...65_535).contains(port) else {
                throw KeyError(reason: "'\(value)' is not HOST:PORT")
            }
            let host = String(value[..<colon])
            guard host.hasPrefix("127.") || host == "[::1]" || host == "localhost" else {
                throw KeyError(reason: "'\(host)' is not a loopback address; the admin listener must not be reachable from the network")
            }
            config.adminListen = value
        },
        Key(name: "admin.token", defaultText: "(empty)",
            summary: "Bearer token a TCP admin client presents with `system.auth` before any other call; at least 16 characters.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { config.adminToken = nil; return }
            guard value.count >= 16 else { throw KeyError(reason: "a token must have at least 16 characters") }
            config.adminToken = value
        },
        Key(name: "admin.max_connections", defaultText: "32",
            summary: "Most admin clients connected at once; a client beyond it gets a Busy error and is closed.") {
            config, value throws(KeyError) in
            config.adminMaxConnections = try integer(value, in: 1...1_024)
        },
        Key(name: "admin.max_request", defaultText: "1048576",
            summary: "Longest admin request line in bytes; a longer one is answered with an error and discarded.") {
            config, value throws(KeyError) in
            config.adminMaxRequest = try integer(value, in: 1_024...(64 << 20))
        },
        Key(name: "admin.idle_timeout", defaultText: "600",
            summary: "Seconds an admin client may stay silent before it is disconnected.") {
            config, value throws(KeyError) in
            config.adminIdleTimeout = try integer(value, in: 1...86_400)
        },
        Key(name: "admin.request_timeout", defaultText: "10",
            summary: "Seconds from a request line's first byte to its newline; a client slower than that gets an error and is closed.") {
            config, value throws(KeyError) in
            config.adminRequestTimeout = try integer(value, in: 1...3_600)
        },
        Key(name: "auth.realm", defaultText: "(sip.domain, or tandem)",
            summary: "Digest realm (RFC 7616) users' credentials are hashed with. Changing it invalidates every stored password.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { config.realm = nil; return }
            guard !value.contains("\""), !value.contains(where: { $0.isNewline }) else { throw KeyError(reason: "a realm cannot contain quotes or line breaks") }
            config.realm = value
        },
        Key(name: "auth.secret", defaultText: "(random at each start)",
            summary: "Key of the HMAC that signs digest nonces, at least 16 characters. Set the same value on every node behind one load balancer; unset, nonces issued before a restart are answered stale.") {
            config, value throws(KeyError) in
            guard !value.isEmpty else { config.authSecret = nil; return }
            guard value.count >= 16 else { throw KeyError(reason: "a secret must have at least 16 characters") }
            config.authSecret = value
        },
        Key(name: "auth.nonce_lifetime", defaultText: "300",
            summary: "Seconds a digest nonce stays valid; an older one is challenged again with stale=true.") {
            config, value throws(KeyError) in
            config.nonceLifetime = try integer(value, in: 10...86_400)
        },
        Key(name: "auth.algorithms", defaultText: "SHA-256, MD5",
            summary: "Digest algorithms offered in each challenge, one WWW-/Proxy-Authenticate header each, in this order (RFC 8760: preferred first). Clients that read only the first header need theirs first.") {
            config, value throws(KeyError) in
            var algorithms: [DigestAlgorithm] = []
            for item in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                guard let algorithm = DigestAlgorithm.allCases.first(where: { $0.rawValue.caseInsensitiveCompare(item) == .orderedSame }) else {
                    throw KeyError(reason: "'\(item)' is not SHA-256 or MD5")
                }
                guard !algorithms.contains(algorithm) else { throw KeyError(reason: "\(algorithm.rawValue) is listed twice") }
                algorithms.append(algorithm)
            }
            guard !algorithms.isEmpty else { throw KeyError(reason: "at least one algorithm is required") }
            config.digestAlgorithms = algorithms
        },
        Key(name: "auth.trusted_sources", defaultText: "(empty)",
            summary: "Comma-separated IP addresses or CIDR blocks whose requests are not challenged (a load balancer, a test harness); for them Tandem is a plain proxy. Providers' own trusted sources are set in the registry.") {
            config, value throws(KeyError) in
            var blocks: [AddressBlock] = []
            for item in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
                guard let block = AddressBlock(item) else { throw KeyError(reason: "'\(item)' is not an IP address or CIDR block") }
                blocks.append(block)
            }
            config.trustedSources = blocks
        },
        Key(name: "auth.max_failures", defaultText: "5",
            summary: "Failed authentications allowed per source address, and per username, within auth.window; the next one bans the source. 0 disables banning.") {
            config, value throws(KeyError) in
            config.banPolicy.maxFailures = try integer(value, in: 0...1_000_000)
        },
        Key(name: "auth.window", defaultText: "60",
            summary: "Seconds over which failed authentications are counted.") {
            config, value throws(KeyError) in
            config.banPolicy.window = try integer(value, in: 1...86_400)
        },
        Key(name: "auth.ban_time", defaultText: "600",
            summary: "Seconds a banned source gets 403 without a challenge; `tandemctl auth.unban source=…` lifts a ban early.") {
            config, value throws(KeyError) in
            config.banPolicy.banTime = try integer(value, in: 1...31_536_000)
        },
        Key(name: "registrar.min_expires", defaultText: "60",
            summary: "Shortest registration accepted, in seconds; a shorter non-zero one is answered 423 with Min-Expires.") {
            config, value throws(KeyError) in
            config.registrar.minExpires = try integer(value, in: 1...86_400)
        },
        Key(name: "registrar.max_expires", defaultText: "3600",
            summary: "Longest registration granted, in seconds; longer requests are shortened to it.") {
            config, value throws(KeyError) in
            config.registrar.maxExpires = try integer(value, in: 1...604_800)
        },
        Key(name: "registrar.default_expires", defaultText: "3600",
            summary: "Registration length when the REGISTER names none (no Expires header or parameter), in seconds.") {
            config, value throws(KeyError) in
            config.registrar.defaultExpires = try integer(value, in: 1...604_800)
        },
        Key(name: "registrar.max_contacts", defaultText: "10",
            summary: "Most contacts (devices) one address-of-record may have registered at once.") {
            config, value throws(KeyError) in
            config.registrar.maxContacts = try integer(value, in: 1...1_000)
        },
        Key(name: "registrar.persistence", defaultText: "batched",
            summary: "When a registration is written to the registry file: `batched` answers at once and commits every change of the next 20 ms in one transaction (kill -9 loses at most those 20 ms; Kamailio's usrloc db_mode 2, write-back); `immediate` commits each before the REGISTER is answered (an acknowledged registration survives kill -9).") {
            config, value throws(KeyError) in
            guard let persistence = Location.Persistence(rawValue: value) else { throw KeyError(reason: "expected batched or immediate, got \"\(value)\"") }
            config.registrarPersistence = persistence
        },
        Key(name: "presence.enabled", defaultText: "true",
            summary: "Whether Tandem is the presence server of its users: SUBSCRIBEs for the `presence` event of a Tandem user are answered by Tandem (docs/presence.md); `false` proxies them like any request.") {
            config, value throws(KeyError) in
            config.presence.enabled = try boolean(value)
        },
        Key(name: "presence.min_expires", defaultText: "60",
            summary: "Shortest presence subscription accepted, in seconds; a shorter non-zero one is answered 423 with Min-Expires.") {
            config, value throws(KeyError) in
            config.presence.minExpires = try integer(value, in: 1...86_400)
        },
        Key(name: "presence.max_expires", defaultText: "3600",
            summary: "Longest presence subscription granted, in seconds (also the length of one that names none, RFC 3856 §6.4); longer requests are shortened to it.") {
            config, value throws(KeyError) in
            config.presence.maxExpires = try integer(value, in: 1...86_400)
        },
        Key(name: "presence.max_per_watcher", defaultText: "500",
            summary: "Presence subscriptions one watching user may hold; past it their new SUBSCRIBE is answered 403.") {
            config, value throws(KeyError) in
            config.presence.maxPerWatcher = try integer(value, in: 1...100_000)
        },
        Key(name: "presence.unsolicited_mwi", defaultText: "false",
            summary: "Whether a user's registered devices that hold no `message-summary` subscription are sent unsolicited message-waiting NOTIFYs (as Asterisk does) when `messages.set` changes their counts, and a newly registered device at once.") {
            config, value throws(KeyError) in
            config.presence.unsolicitedMWI = try boolean(value)
        },
        Key(name: "presence.max_subscriptions", defaultText: "500000",
            summary: "Presence subscriptions held at most; past it a new SUBSCRIBE is answered 503 with Retry-After.") {
            config, value throws(KeyError) in
            config.presence.maxSubscriptions = try integer(value, in: 1...10_000_000)
        },
        Key(name: "security.blocked_user_agents", defaultText: "friendly-scanner, sipvicious, sipcli, sip-scan, sipsak, vaxsipuseragent, iwar, sivus, sundayddr",
            summary: "Comma-separated User-Agent fragments (case-insensitive); a request whose User-Agent contains one is dropped without an answer. Empty: none.") {
            config, value throws(KeyError) in
            config.blockedUserAgents = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        },
        Key(name: "security.flood_limit", defaultText: "200",
            summary: "Messages one untrusted source may send within security.flood_window (Kamailio's pike); the next one bans the source: everything it sends is dropped unanswered for security.flood_ban_time, listed by auth.bans, lifted by auth.unban. Trusted and provider sources are never limited. 0 turns it off.") {
            config, value throws(KeyError) in
            config.floodPolicy.limit = try integer(value, in: 0...10_000_000)
        },
        Key(name: "security.flood_window", defaultText: "1",
            summary: "Seconds over which a source's messages are counted for security.flood_limit.") {
            config, value throws(KeyError) in
            config.floodPolicy.window = try integer(value, in: 1...3_600)
        },
        Key(name: "security.flood_ban_time", defaultText: "60",
            summary: "Seconds a flooding source is dropped for.") {
            config, value throws(KeyError) in
            config.floodPolicy.banTime = try integer(value, in: 1...31_536_000)
        },
        Key(name: "log.level", defaultText: "info",
            summary: "Least severe level written to stderr: debug, info, notice, warning or error. Changes on SIGHUP.") {
            config, value throws(KeyError) in
            guard let level = LogLevel(name: value) else {
                throw KeyError(reason: "'\(value)' is not one of debug, info, notice, warning, error")
            }
            config.logLevel = level
        },
    ]

    /// Sections that exist so a file may name them, even before they hold keys.
    public static let sections: Set<String> = ["sip", "admin", "auth", "registrar", "presence", "security", "storage", "routing", "cdr", "events", "log"]

    static func dialplanName(_ value: String) throws(KeyError) -> String? {
        guard !value.isEmpty else { return nil }
        guard value.utf8.allSatisfy({ DialplanSet.isWordByte($0) }) else {
            throw KeyError(reason: "'\(value)' is not a dialplan name (the file name without .dialplan: letters, digits, '_', '-')")
        }
        return value
    }

    static func boolean(_ value: String) throws(KeyError) -> Bool {
        guard let flag = ["true": true, "false": false][value.lowercased()] else { throw KeyError(reason: "expected true or false, got \"\(value)\"") }
        return flag
    }

    static func integer(_ value: String, in range: ClosedRange<Int>) throws(KeyError) -> Int {
        guard let number = Int(value), range.contains(number) else {
            throw KeyError(reason: "'\(value)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// Reads a file and applies overrides; `file` is used only in error messages when `text` is given.
    public static func load(file: String, overrides: [String] = []) throws(ConfigurationError) -> Configuration {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigurationError(file: file, line: nil, reason: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(file: file, line: nil, reason: "the file is not UTF-8 text")
        }
        return try parse(text, file: file, overrides: overrides)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = []) throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        var seen: [String: Int] = [:]
        var section: String?
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let line = stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    throw ConfigurationError(file: file, line: lineNumber, reason: "section header must end with ']'")
                }
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces).lowercased()
                guard sections.contains(name) else {
                    throw ConfigurationError(file: file, line: lineNumber,
                                             reason: "unknown section [\(name)] (known: \(sections.sorted().joined(separator: ", ")))")
                }
                section = name
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(file: file, line: lineNumber, reason: "expected 'key = value'")
            }
            guard let section else {
                throw ConfigurationError(file: file, line: lineNumber, reason: "key outside of any [section]")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = unquote(line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            let name = "\(section).\(key)"
            if let previous = seen[name] {
                throw ConfigurationError(file: file, line: lineNumber, reason: "\(name) is already set on line \(previous)")
            }
            seen[name] = lineNumber
            do { try apply(name, value, to: &configuration) } catch {
                throw ConfigurationError(file: file, line: lineNumber, reason: "\(name): \(error.reason)")
            }
        }
        for override in overrides {
            guard let equals = override.firstIndex(of: "=") else {
                throw ConfigurationError(file: "--set \(override)", line: nil, reason: "expected section.key=value")
            }
            let name = override[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = unquote(override[override.index(after: equals)...].trimmingCharacters(in: .whitespaces))
            do { try apply(name, value, to: &configuration) } catch {
                throw ConfigurationError(file: "--set \(override)", line: nil, reason: "\(name): \(error.reason)")
            }
        }
        if configuration.registrar.minExpires > configuration.registrar.maxExpires {
            throw ConfigurationError(file: file, line: seen["registrar.min_expires"],
                                     reason: "registrar.min_expires (\(configuration.registrar.minExpires)) is above registrar.max_expires (\(configuration.registrar.maxExpires))")
        }
        if configuration.presence.minExpires > configuration.presence.maxExpires {
            throw ConfigurationError(file: file, line: seen["presence.min_expires"],
                                     reason: "presence.min_expires (\(configuration.presence.minExpires)) is above presence.max_expires (\(configuration.presence.maxExpires))")
        }
        if configuration.adminListen != nil, configuration.adminToken == nil {
            throw ConfigurationError(file: file, line: seen["admin.listen"], reason: "admin.listen: a TCP admin listener needs admin.token")
        }
        if configuration.advertise == nil,
           let wildcard = configuration.listen.first(where: { ["0.0.0.0", "::"].contains($0.address.host) }) {
            // A wildcard address in Via and Record-Route would send responses and in-dialog requests nowhere.
            throw ConfigurationError(file: file, line: seen["sip.listen"],
                                     reason: "sip.listen: \(wildcard) listens on every address; set sip.advertise to the address peers reach Tandem at")
        }
        return configuration
    }

    static func apply(_ name: String, _ value: String, to configuration: inout Configuration) throws(KeyError) {
        guard let key = keys.first(where: { $0.name == name }) else {
            let section = name.split(separator: ".").first.map(String.init) ?? ""
            let known = keys.filter { $0.name.hasPrefix(section + ".") }.map(\.name)
            let hint = known.isEmpty ? "" : " (known in [\(section)]: \(known.joined(separator: ", ")))"
            throw KeyError(reason: "unknown key\(hint)")
        }
        try key.apply(&configuration, value)
    }

    /// `#` and `;` start a comment at the beginning of a line, or after white space.
    static func stripComment(_ line: String) -> String {
        var previous: Character = " "
        var inQuotes = false
        for (offset, character) in line.enumerated() {
            if character == "\"" { inQuotes.toggle() }
            if !inQuotes, character == "#" || character == ";", previous == " " || previous == "\t" {
                return String(line.prefix(offset))
            }
            previous = character
        }
        return line
    }

    static func unquote(_ value: String) -> String {
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            return String(value.dropFirst().dropLast())
        }
        return value
    }
}

/// The version Tandem reports (`--version`, `Server`, `system.version`).
public enum TandemVersion {
    public static let current = "0.1.0"
}

/// The presence server's limits (`[presence]`, docs/presence.md).
public struct PresencePolicy: Sendable, Equatable {
    public var enabled = true
    public var minExpires = 60
    public var maxExpires = 3600
    public var maxSubscriptions = 500_000
    public var maxPerWatcher = 500
    public var unsolicitedMWI = false
    public init() {}
}
