import Crypto
import Events
import JSON
import Registrar
import Registry
import Synchronization

/// Counters of the admin socket.
public final class AdminStatistics: Sendable {
    let requests = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let connectionsAccepted = Atomic<Int>(0)
    let connectionsRefused = Atomic<Int>(0)
    let connectionsOpen = Atomic<Int>(0)
    let oversizedRequests = Atomic<Int>(0)
    let incompleteRequests = Atomic<Int>(0)
    let unauthorized = Atomic<Int>(0)

    public init() {}

    public func snapshot() -> [(String, Int)] {
        [("admin.requests", requests.load(ordering: .relaxed)), ("admin.errors", errors.load(ordering: .relaxed)),
         ("admin.connections_accepted", connectionsAccepted.load(ordering: .relaxed)),
         ("admin.connections_refused", connectionsRefused.load(ordering: .relaxed)),
         ("admin.connections_open", connectionsOpen.load(ordering: .relaxed)),
         ("admin.oversized_requests", oversizedRequests.load(ordering: .relaxed)),
         ("admin.incomplete_requests", incompleteRequests.load(ordering: .relaxed)),
         ("admin.unauthorized", unauthorized.load(ordering: .relaxed))]
    }
}

/// Turns one line of JSON-RPC 2.0 (a request, a notification or a batch) into the line to answer,
/// with no I/O of its own: the socket server and the tests both drive it.
public final class AdminDispatcher: Sendable {
    public let registry: Registry
    public let statistics = AdminStatistics()
    let methods: [String: AdminMethod]
    let version: String
    let startedAt: Int64
    let gatewayStatistics: @Sendable () -> [(String, Int)]
    let location: Location?
    let authFailures: AuthFailures?
    let routing: RoutingAccess?
    let callLog: CallLog?
    let callsInProgress: (@Sendable (String) -> Int)?
    let events: EventDispatcher?
    let clock: @Sendable () -> Int64

    /// - Parameters:
    ///   - location, authFailures: the gateway's registered devices and bans (`location.*`,
    ///     `auth.*`); without them those methods answer that no gateway runs.
    public init(registry: Registry, version: String, location: Location? = nil, authFailures: AuthFailures? = nil,
                routing: RoutingAccess? = nil, callLog: CallLog? = nil, callsInProgress: (@Sendable (String) -> Int)? = nil,
                events: EventDispatcher? = nil, statistics: @escaping @Sendable () -> [(String, Int)] = { [] },
                clock: @escaping @Sendable () -> Int64) {
        self.registry = registry
        self.version = version
        self.location = location
        self.authFailures = authFailures
        self.routing = routing
        self.callLog = callLog
        self.callsInProgress = callsInProgress
        self.events = events
        self.clock = clock
        self.gatewayStatistics = statistics
        self.methods = Dictionary(uniqueKeysWithValues: AdminMethods.all.map { ($0.name, $0) })
        self.startedAt = clock()
    }

    /// The answer to `line`, or nil when it held only notifications. `notify` sends notifications
    /// (progress) to the same caller before the answer.
    public func handle(_ line: [UInt8], session: AdminSession = AdminSession()) -> String? {
        let request: JSONValue
        do {
            request = try JSONValue.parse(line)
        } catch {
            statistics.requests.add(1, ordering: .relaxed)
            statistics.errors.add(1, ordering: .relaxed)
            return Self.response(id: .null, error: RPCError(code: RPCError.parseErrorCode, message: "Parse error",
                                                            data: ["reason": .string(error.description)])).description
        }
        if case .array(let batch) = request {
            // JSON-RPC 2.0 §6: an empty batch is one Invalid Request; otherwise one answer per request.
            guard !batch.isEmpty else {
                statistics.errors.add(1, ordering: .relaxed)
                return Self.response(id: .null, error: RPCError(code: RPCError.invalidRequestCode, message: "Invalid Request",
                                                                data: ["reason": "empty batch"])).description
            }
            let answers = batch.compactMap { handle(request: $0, session: session) }
            return answers.isEmpty ? nil : JSONValue.array(answers).description
        }
        return handle(request: request, session: session)?.description
    }

    /// One request object; nil for a notification (no `id`).
    public func handle(request: JSONValue, session: AdminSession = AdminSession()) -> JSONValue? {
        statistics.requests.add(1, ordering: .relaxed)
        guard case .object(let members) = request else {
            statistics.errors.add(1, ordering: .relaxed)
            return Self.response(id: .null, error: RPCError(code: RPCError.invalidRequestCode, message: "Invalid Request",
                                                            data: ["reason": "a request is a JSON object"]))
        }
        let id = members["id"]
        let answerID = id ?? .null
        if let id, !Self.isValidID(id) {
            statistics.errors.add(1, ordering: .relaxed)
            return Self.response(id: .null, error: RPCError(code: RPCError.invalidRequestCode, message: "Invalid Request",
                                                            data: ["field": "id", "reason": "must be a string, a number or null"]))
        }
        guard members["jsonrpc"] == "2.0" else {
            statistics.errors.add(1, ordering: .relaxed)
            return Self.response(id: answerID, error: RPCError(code: RPCError.invalidRequestCode, message: "Invalid Request",
                                                               data: ["field": "jsonrpc", "reason": "must be \"2.0\""]))
        }
        guard let name = members["method"]?.stringValue else {
            statistics.errors.add(1, ordering: .relaxed)
            return Self.response(id: answerID, error: RPCError(code: RPCError.invalidRequestCode, message: "Invalid Request",
                                                               data: ["field": "method", "reason": "a string is required"]))
        }
        let result: Result<JSONValue, RPCError>
        if session.token != nil, !session.isAuthenticated, name != "system.auth" {
            statistics.unauthorized.add(1, ordering: .relaxed)
            result = .failure(RPCError(code: RPCError.unauthorizedCode, message: "Unauthorized",
                                       data: ["reason": "call system.auth with the admin token first"]))
        } else {
            result = invoke(name, params: members["params"], session: session)
        }
        if case .failure = result { statistics.errors.add(1, ordering: .relaxed) }
        // A notification gets no answer, even an error (JSON-RPC 2.0 §4.1).
        guard id != nil else { return nil }
        switch result {
        case .success(let value): return ["jsonrpc": "2.0", "id": answerID, "result": value]
        case .failure(let error): return Self.response(id: answerID, error: error)
        }
    }

    func invoke(_ name: String, params: JSONValue?, session: AdminSession) -> Result<JSONValue, RPCError> {
        guard let method = methods[name] else {
            return .failure(RPCError(code: RPCError.methodNotFoundCode, message: "Method not found",
                                     data: ["field": "method", "reason": .string("no method '\(name)'; system.methods lists them")]))
        }
        let invocation = Invocation(registry: registry, version: version, statistics: { [self] in gatewayStatistics() + statistics.snapshot() },
                                    methods: AdminMethods.all, startedAt: startedAt,
                                    session: session, location: location, authFailures: authFailures, routing: routing, callLog: callLog,
                                    callsInProgress: callsInProgress, events: events, clock: clock)
        do {
            let arguments = try Arguments(params, declared: method.parameters)
            return .success(try method.run(arguments, invocation))
        } catch {
            return .failure(error)
        }
    }

    static func isValidID(_ id: JSONValue) -> Bool {
        switch id {
        case .string, .integer, .double, .null: true
        default: false
        }
    }

    static func response(id: JSONValue, error: RPCError) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": error.json]
    }
}

/// One client of the admin socket: whether it must present a token (TCP) and has, how to send it
/// notifications, and what to undo when it leaves (its event subscriptions and services).
public final class AdminSession: Sendable {
    private static let nextConnection = Atomic<Int>(1)
    /// Distinguishes this connection from every other in the process.
    public let connection: Int
    private let closeHandlers = Mutex<[@Sendable () -> Void]?>([])
    /// The token a TCP client must present with `system.auth`; nil on the Unix socket, whose file
    /// mode already limits who may connect.
    public let token: String?
    private let authenticated = Atomic<Bool>(false)
    let send: @Sendable (JSONValue) -> Void

    public init(token: String? = nil, send: @escaping @Sendable (JSONValue) -> Void = { _ in }) {
        self.token = token
        self.send = send
        self.connection = Self.nextConnection.add(1, ordering: .relaxed).oldValue
    }

    private let listening = Atomic<Bool>(false)

    /// Whether the connection subscribed to events or registered a service: `admin.idle_timeout`
    /// does not apply to it, since it waits for notifications.
    public var isListening: Bool { listening.load(ordering: .acquiring) }

    /// Runs `handler` when the connection closes (at once if it already has); the connection now
    /// listens for notifications.
    func onClose(_ handler: @escaping @Sendable () -> Void) {
        listening.store(true, ordering: .releasing)
        let closed = closeHandlers.withLock { handlers -> Bool in
            guard handlers != nil else { return true }
            handlers!.append(handler)
            return false
        }
        if closed { handler() }
    }

    /// The connection is gone: what it set up for itself ends.
    public func close() {
        for handler in closeHandlers.withLock({ handlers in defer { handlers = nil }; return handlers ?? [] }) { handler() }
    }

    public var isAuthenticated: Bool { authenticated.load(ordering: .acquiring) }

    /// Compares in constant time, so the answer's timing says nothing about the token.
    func authenticate(_ presented: String) -> Bool {
        guard let token else { return true }
        let ok = constantTimeEquals(Array(presented.utf8), Array(token.utf8))
        if ok { authenticated.store(true, ordering: .releasing) }
        return ok
    }

    /// A JSON-RPC notification to this client.
    public func notify(_ method: String, _ params: JSONValue) {
        send(["jsonrpc": "2.0", "method": .string(method), "params": params])
    }
}
