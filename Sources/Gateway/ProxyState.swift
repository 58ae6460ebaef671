import Presence
import Registry
import SIP
import SIPTransaction
import SIPTransport
import Synchronization

/// How several targets of one request are tried.
public enum ForkMode: String, Sendable, Equatable {
    /// All at once; the best final response wins (RFC 3261 §16.7).
    case parallel
    /// One after another in order, each with its own timeout, moving on after a failure.
    case serial
}

/// One place a request is forwarded to.
public struct ForwardTarget: Sendable, Equatable {
    /// Where the request is sent (a loose-routing next hop).
    public var nextHop: SIPURI
    /// A new Request-URI, or `nil` to keep the received one.
    public var requestURI: String?
    /// Route values to put on the request, top first (a registered contact's Path, RFC 3327).
    public var routes: [String]
    /// Where to send instead of resolving `nextHop`: a registered contact's flow (RFC 3581, RFC 5626).
    public var destination: Destination?
    /// Headers this branch carries in place of any the request had (P-Served-User, Diversion).
    public var headers: [HeaderLine]
    /// Headers removed from this branch (an app's P-Served-User, which stays inside the chain).
    public var removing: [String]
    /// Who this branch reaches, for the call's record.
    public var party: TargetParty?

    public init(nextHop: SIPURI, requestURI: String? = nil, routes: [String] = [], destination: Destination? = nil,
                headers: [HeaderLine] = [], removing: [String] = [], party: TargetParty? = nil) {
        self.nextHop = nextHop
        self.requestURI = requestURI
        self.routes = routes
        self.destination = destination
        self.headers = headers
        self.removing = removing
        self.party = party
    }

    /// Whether the branch is the received request with only Via, Record-Route and Max-Forwards
    /// changed (and so can be built by editing bytes).
    var isUnchanged: Bool { requestURI == nil && routes.isEmpty && headers.isEmpty && removing.isEmpty }
}

/// Who a branch reaches: a user's device, a chain app, or the voicemail app.
public enum TargetParty: Sendable, Equatable {
    case user(String)
    case app(String)
    case voicemail(String)

    var appID: String? {
        switch self {
        case .user: nil
        case .app(let id), .voicemail(let id): id
        }
    }
}

/// The call a forwarded INVITE belongs to; a `continuation` is a leg an app handed back, whose
/// failures are relayed to the caller through the first leg and decide nothing themselves.
struct CallLeg: Sendable {
    var key: CallKey
    var continuation: Bool
}

/// What the call's record needs of a final answer sent to the caller.
struct CallFinal {
    var status: Int
    var reason: String
    var toTag: String?
    var party: TargetParty?
    var cancelled: Bool
    /// Tandem composed the answer itself (a timeout, a ring timeout, an unusable hop).
    var byTandem: Bool
    var appCodes: [String: Int]
}

/// The reason phrase and To-tag of a final response received on a branch.
struct ReceivedFinal {
    var reason: String
    var toTag: String?
}

public struct HeaderLine: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A group of targets tried together (RFC 3261 §16.6 allows any order of parallel and sequential
/// searches): the devices of the callee, then voicemail; an app of a chain, then the next one.
public struct Stage: Sendable, Equatable {
    /// Which ending of a stage lets the next one start.
    public enum Advance: Sendable, Equatable {
        /// Any final answer below 600 that is not a 2xx: busy, unavailable, no answer (voicemail,
        /// serial forking).
        case unanswered
        /// Only a failure of the hop itself, 408 or 5xx: an app's 4xx or 6xx is its verdict on the call.
        case failed

        func allows(_ status: Int) -> Bool {
            switch self {
            case .unanswered: status >= 300 && status < 600
            case .failed: status == 408 || (500...599).contains(status)
            }
        }
    }

    public var targets: [ForwardTarget]
    /// Seconds before the stage's ringing branches are cancelled and the next stage starts.
    public var timeout: Double?
    public var advance: Advance
    /// The final status of a ringing branch given up on at the timeout.
    public var timeoutStatus: Int
    /// The return-route token of a chain step: once the app hands the call back, its failures are
    /// relayed answers and do not advance.
    public var chainToken: String?

    public init(targets: [ForwardTarget], timeout: Double? = nil, advance: Advance = .unanswered, timeoutStatus: Int = 487) {
        self.targets = targets
        self.timeout = timeout
        self.advance = advance
        self.timeoutStatus = timeoutStatus
    }
}

/// What was done to a received request before it is forwarded, so the forwarded bytes can be built by
/// editing the received ones instead of re-serializing (DESIGN.md).
struct ForwardPlan {
    var original: [UInt8]
    var poppedRoutes = 0
    var maxForwards = 70
    /// The Request-URI was rewritten (strict routing): only libosip2's serializer is used.
    var rewritten = false
}

/// Server transactions are matched by the RFC 3261 §17.2.3 triple; an ACK and a CANCEL find their
/// INVITE under the INVITE method.
struct ServerKey: Hashable, Sendable {
    var branch: String
    var sentBy: String
    var method: SIPMethod
    /// The shard of the request's Call-ID (`ProxyShards`).
    var shard: Int
}

/// Client transactions are matched by the branch Tandem generated and the CSeq method (§17.1.3).
struct ClientKey: Hashable, Sendable {
    var branch: String
    var method: SIPMethod
    /// The shard of the request's Call-ID (`ProxyShards`).
    var shard: Int
}

enum TimerEvent: Sendable {
    case server(ServerKey, TransactionTimer)
    case client(ClientKey, TransactionTimer)
    case context(UInt64, ResponseContext.Timer)
}

struct ServerRecord {
    var tx: ServerTransaction
    var upstream: Destination
    var context: UInt64?
    /// Timers this transaction started; cancelled when it ends, so memory follows live transactions.
    var timers: [TimerID] = []
}

struct ClientRecord {
    var tx: ClientTransaction
    var destination: Destination
    var request: [UInt8]
    var context: UInt64?
    var branchIndex: Int
    var timers: [TimerID] = []
    /// A NOTIFY of the presence server: its answer goes to that subscription.
    var notify: (id: SubscriptionID, cseq: UInt32)? = nil
}

/// How one branch of a forwarded request (RFC 3261 §16.6 "a branch") was sent: its client
/// transaction, where it went and its bytes (for the CANCEL built from them).
struct BranchLeg {
    var key: ClientKey
    var destination: Destination
    var request: [UInt8]
}

/// A forwarded request: its response context (the decisions) and what carrying them out needs.
struct ForwardContext {
    var machine: ResponseContext
    var serverKey: ServerKey
    var upstream: Destination
    /// The request as it is forwarded before per-branch edits; empty when there is one target only
    /// (the received message is then edited in place, saving a serialize and a parse).
    var base: [UInt8]
    /// The request as received, for answers Tandem builds itself (408, 487, 500).
    var original: InboundMessage
    var recordRoute: Bool
    var inboundLocal: ListenPoint
    /// The call this INVITE opened or continues, when it is a call's first INVITE.
    var call: CallLeg?
    /// Parallel to the machine's branches.
    var legs: [BranchLeg] = []
    /// The timers the machine runs, as the timer service knows them.
    var timers: [ResponseContext.Timer: TimerID] = [:]
}

/// Where a context's answers go, taken when the answer is decided: an answer composed outside the
/// lock still reaches its server transaction and its call's record if the context ends meanwhile.
struct AnswerPath {
    var serverKey: ServerKey
    var upstream: Destination
    var call: CallLeg?
    var original: InboundMessage

    init(_ context: ForwardContext) {
        serverKey = context.serverKey
        upstream = context.upstream
        call = context.call
        original = context.original
    }
}

/// What the proxy keeps between messages for the calls of one shard; behind the shard's Mutex, held
/// only for bookkeeping, never while parsing, serializing or sending.
struct ProxyState {
    var servers: [ServerKey: ServerRecord] = [:]
    var clients: [ClientKey: ClientRecord] = [:]
    var contexts: [UInt64: ForwardContext] = [:]
    /// Numbers the shard's contexts; a context's id carries its shard in its low byte.
    var nextContext: UInt64 = 1
    /// Responses decided for each server transaction and not yet sent.
    var upstream = Outbox<ServerKey, [UInt8]>()
    /// The registrar's answers over UDP, for retransmissions of their requests.
    var answered = AnsweredRequests()
}

/// The proxy's state split by Call-ID. Every message of a transaction, and every transaction of a
/// dialog, carries the same Call-ID (RFC 3261 §8.1.1.4, §12.2.1.1), so one shard owns a call's server
/// and client transactions, its response contexts and its outbox: a dialog's messages are decided in
/// order under one lock, and workers handling different calls never wait for each other. On two
/// cores the single lock this replaces cost little (docs/PERFORMANCE.md); the shards are for more
/// workers than that.
final class ProxyShards: Sendable {
    private final class Shard: Sendable {
        let state = Mutex(ProxyState())
    }
    private let shards: [Shard]
    /// Server transactions held in all shards, against `sip.max_transactions`.
    private let held = Atomic<Int>(0)

    /// At most 256: a context id keeps its shard in one byte.
    init(count: Int = 16) {
        shards = (0..<min(max(count, 1), 256)).map { _ in Shard() }
    }

    var count: Int { shards.count }

    /// FNV-1a over the Call-ID's bytes: cheap, and any spread will do, the Call-ID being random.
    func shard(callID: String?) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in (callID ?? "").utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return Int(hash % UInt32(shards.count))
    }

    static func shard(context: UInt64) -> Int { Int(context & 0xFF) }

    func withLock<Result>(_ shard: Int, _ body: (inout ProxyState) -> sending Result) -> sending Result {
        shards[shard].state.withLock { state in body(&state) }
    }

    /// Counts a new server transaction; false, counting nothing, when `limit` are already held.
    func admitServer(limit: Int) -> Bool {
        if held.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            held.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseServer() {
        held.wrappingSubtract(1, ordering: .relaxed)
    }

    var totals: (server: Int, client: Int, contexts: Int) {
        shards.reduce((0, 0, 0)) { total, shard in
            let counts = shard.state.withLock { ($0.servers.count, $0.clients.count, $0.contexts.count) }
            return (total.0 + counts.0, total.1 + counts.1, total.2 + counts.2)
        }
    }
}

/// Messages sent in the order they were decided, per key, without holding the proxy's lock while
/// sending. Effects run after the lock is released, so two workers handling a 180 and a 200 of the
/// same transaction could otherwise send them in either order — and a caller that sees the 180
/// after the 200 treats it as a protocol error (RFC 3261 §17.2.1: no provisional response after a
/// final one). Under the lock, `queue` appends and says whether this worker must flush; the flusher
/// `take`s batches, sending each outside the lock, until a `take` finds nothing and ends the flush.
/// At most one worker sends for a key at a time, so the wire order is the decision order.
struct Outbox<Key: Hashable, Message> {
    private var pending: [Key: [(Message, Destination)]] = [:]

    /// Queues a message; true when no flush for `key` is under way and the caller must run one.
    mutating func queue(_ message: Message, to destination: Destination, for key: Key) -> Bool {
        if pending[key] != nil {
            pending[key]!.append((message, destination))
            return false
        }
        pending[key] = [(message, destination)]
        return true
    }

    /// What was queued for `key` since the last take, oldest first; nil ends the flush.
    mutating func take(_ key: Key) -> [(Message, Destination)]? {
        guard let batch = pending[key] else { return nil }
        if batch.isEmpty {
            pending.removeValue(forKey: key)
            return nil
        }
        pending[key] = []
        return batch
    }

    var isEmpty: Bool { pending.isEmpty }
}

/// Work decided under the lock and carried out after it is released.
enum ProxyEffect {
    /// Send what `ProxyState.upstream` holds for this server transaction, in order.
    case flushUpstream(ServerKey)
    /// A client transaction's request: a transport failure ends the branch as a 503 (§16.7 step 2).
    case sendRequest([UInt8], Destination, ClientKey)
    case schedule(Double, TimerEvent, TimerID)
    case cancelTimers([TimerID])
    case startBranch(context: UInt64, target: ForwardTarget)
    case sendCancel(context: UInt64, branch: Int)
    /// A final answer that must be built before it goes upstream (libosip2, outside the lock).
    case compose(AnswerPath, ResponseContext.Response)
    case sendAck(request: [UInt8], response: [UInt8], destination: Destination)
    case finish(context: UInt64)
    case callFinal(CallLeg, CallFinal)
    /// A NOTIFY's final answer (or 408 for a timeout, 503 for a transport failure).
    case notifyAnswered(SubscriptionID, cseq: UInt32, status: Int)
}
