/// Why a message could not be accepted; each case knows the SIP status it maps to (STYLE.md §6).
public struct SIPMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// libosip2 rejected the bytes.
        case unparseable
        /// Fewer body bytes arrived than Content-Length announced (RFC 3261 §18.3).
        case truncatedBody
        /// A header the request needs is missing (RFC 3261 §8.1.1).
        case missingHeader(String)
        /// A header is present but its value cannot be used.
        case invalidHeader(String)
        /// A value handed to a mutation could not be parsed.
        case invalidValue
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// The status code a server answers a request carrying this error with.
    public var statusCode: Int { 400 }

    public var description: String { reason }
}
