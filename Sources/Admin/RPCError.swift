import JSON
import Registry

/// A JSON-RPC 2.0 error object. Codes from -32768 to -32000 are the protocol's; Tandem's own are
/// from -32001 down, one per kind of refusal, and `data` names the field at fault.
public struct RPCError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603
    public static let notFoundCode = -32001
    public static let conflictCode = -32002
    public static let forbiddenCode = -32003
    public static let unauthorizedCode = -32004
    public static let tooLargeCode = -32005
    public static let busyCode = -32006
    public static let incompleteCode = -32007

    /// Every code Tandem answers with, for docs/admin-api.md.
    public static let codes: [(Int, String, String)] = [
        (parseErrorCode, "Parse error", "the line is not JSON"),
        (invalidRequestCode, "Invalid Request", "not a JSON-RPC 2.0 request object (or an empty batch)"),
        (methodNotFoundCode, "Method not found", "no such method; `system.methods` lists them"),
        (invalidParamsCode, "Invalid params", "a parameter is missing, unknown, of the wrong type or invalid; `data.field` names it"),
        (internalErrorCode, "Internal error", "the store failed; nothing was changed"),
        (notFoundCode, "Not found", "the account, user, number, provider or app named does not exist"),
        (conflictCode, "Conflict", "it exists already, or is still referenced, or is already in that state"),
        (forbiddenCode, "Forbidden", "`acting_user` may not do this (only the operator, or the account's primary user, may)"),
        (unauthorizedCode, "Unauthorized", "a TCP connection must first call `system.auth` with the configured token"),
        (tooLargeCode, "Request too large", "the line is longer than `admin.max_request` bytes; it was discarded"),
        (busyCode, "Busy", "`admin.max_connections` connections are open; this one is closed"),
        (incompleteCode, "Request incomplete", "a request line did not end within `admin.request_timeout` seconds of its first byte; the connection is closed"),
    ]

    public static func invalidParams(_ field: String, _ reason: String) -> RPCError {
        RPCError(code: invalidParamsCode, message: "Invalid params", data: ["field": .string(field), "reason": .string(reason)])
    }

    public init(_ error: RegistryError) {
        let code: Int
        let message: String
        switch error.kind {
        case .invalid: (code, message) = (Self.invalidParamsCode, "Invalid params")
        case .notFound: (code, message) = (Self.notFoundCode, "Not found")
        case .conflict: (code, message) = (Self.conflictCode, "Conflict")
        case .forbidden: (code, message) = (Self.forbiddenCode, "Forbidden")
        case .storage: (code, message) = (Self.internalErrorCode, "Internal error")
        }
        var data: [String: JSONValue] = ["reason": .string(error.reason)]
        if let field = error.field { data["field"] = .string(field) }
        self.init(code: code, message: message, data: .object(data))
    }

    var json: JSONValue {
        var object: [String: JSONValue] = ["code": JSONValue(code), "message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }
}
