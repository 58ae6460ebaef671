/// Why a provisioning call was refused. Each kind maps to one JSON-RPC error code at the admin
/// socket (STYLE.md §6); `field` names the parameter at fault when there is one.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// A parameter is missing or malformed.
        case invalid
        /// The thing named does not exist.
        case notFound
        /// It exists already, or is still referenced, or the change conflicts with another row.
        case conflict
        /// `acting_user` may not do this.
        case forbidden
        /// The store itself failed.
        case storage
    }

    public var kind: Kind
    public var field: String?
    public var reason: String

    public init(_ kind: Kind, field: String? = nil, _ reason: String) {
        self.kind = kind
        self.field = field
        self.reason = reason
    }

    public static func invalid(_ field: String, _ reason: String) -> RegistryError { .init(.invalid, field: field, reason) }
    public static func notFound(_ field: String, _ reason: String) -> RegistryError { .init(.notFound, field: field, reason) }
    public static func conflict(_ field: String?, _ reason: String) -> RegistryError { .init(.conflict, field: field, reason) }
    public static func forbidden(_ reason: String) -> RegistryError { .init(.forbidden, field: "acting_user", reason) }
    public static func storage(_ reason: String) -> RegistryError { .init(.storage, reason) }

    public var description: String { field.map { "\($0): \(reason)" } ?? reason }
}
