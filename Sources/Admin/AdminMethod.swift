import Events
import JSON
import Registrar
import Registry

/// One admin method: its documentation and its body. `AdminMethods.all` is the table the
/// dispatcher serves, `system.methods` lists and docs/admin-api.md is generated from.
public struct AdminMethod: Sendable {
    public var name: String
    public var summary: String
    public var parameters: [Parameter]
    /// What the result holds.
    public var result: String
    /// Example `params`, shown in the documentation.
    public var example: JSONValue
    let run: @Sendable (Arguments, Invocation) throws(RPCError) -> JSONValue
}

/// What a method may use while it runs.
public struct Invocation: Sendable {
    public var registry: Registry
    public var version: String
    public var statistics: @Sendable () -> [(String, Int)]
    public var methods: [AdminMethod]
    public var startedAt: Int64
    /// The caller's connection: notifications (progress of long calls) and authentication.
    public var session: AdminSession
    public var location: Location?
    public var authFailures: AuthFailures?
    public var routing: RoutingAccess?
    /// The gateway's call log, flushed before call records are read so every ended call is in them.
    public var callLog: CallLog?
    /// The gateway's calls in progress counted against an account (`gauge.get`).
    public var callsInProgress: (@Sendable (String) -> Int)?
    /// Push subscriptions, webhooks and the service directory; nil when no dispatcher runs.
    public var events: EventDispatcher?
    public var clock: @Sendable () -> Int64

    /// Commits what the call path queued — call records, call state, binding changes and their
    /// events — so a read that follows sees everything that happened before it.
    func flushWrites() {
        callLog?.flush()
        location?.flush()
    }

    func requireRouting() throws(RPCError) -> RoutingAccess {
        guard let routing else { throw RPCError(code: RPCError.internalErrorCode, message: "Internal error", data: ["reason": "no gateway runs in this process"]) }
        return routing
    }

    func requireEvents() throws(RPCError) -> EventDispatcher {
        guard let events else { throw RPCError(code: RPCError.internalErrorCode, message: "Internal error", data: ["reason": "no event dispatcher runs in this process"]) }
        return events
    }

    func requireLocation() throws(RPCError) -> Location {
        guard let location else { throw RPCError(code: RPCError.internalErrorCode, message: "Internal error", data: ["reason": "no gateway runs in this process"]) }
        return location
    }

    func requireAuthFailures() throws(RPCError) -> AuthFailures {
        guard let authFailures else { throw RPCError(code: RPCError.internalErrorCode, message: "Internal error", data: ["reason": "no gateway runs in this process"]) }
        return authFailures
    }

    func notify(_ method: String, _ params: JSONValue) { session.notify(method, params) }

    /// `Location.update` with its refusals and storage failures as admin errors.
    func update<R: Sendable>(_ location: Location, aor: String,
                             _ decide: ([Binding]) throws(RPCError) -> ([Binding], [BindingChange], R)) throws(RPCError) -> R {
        do throws(LocationError<RPCError>) {
            return try location.update(aor: aor, decide)
        } catch {
            switch error {
            case .refused(let error): throw error
            case .storage(let error): throw RPCError(error)
            }
        }
    }

    func write<R: Sendable>(_ body: (RegistryStore) throws(RegistryError) -> R) throws(RPCError) -> R {
        do { return try registry.write(body) } catch { throw RPCError(error) }
    }

    func read<R: Sendable>(_ body: (RegistryStore) throws(RegistryError) -> R) throws(RPCError) -> R {
        do { return try registry.read(body) } catch { throw RPCError(error) }
    }
}

extension Parameter {
    static let acting = Parameter.optional("acting_user", .string,
        "The user on whose behalf the call is made; their role decides what is allowed. Absent: the operator, who may do anything.")
    static let limit = Parameter.optional("limit", .integer, "Most items to return, 1 to 10000 (default 100).")
    static let offset = Parameter.optional("offset", .integer, "Items to skip (default 0).")
}

extension Arguments {
    var acting: String? { string("acting_user") }
    func paging() throws(RPCError) -> (Int, Int) { (try integer("limit") ?? 100, try integer("offset") ?? 0) }
}
