/// A request method (RFC 3261 §7.1, §27.4 and the extensions Tandem meets). Methods are
/// case-sensitive tokens: `invite` is an unknown method, not INVITE.
public enum SIPMethod: Hashable, Sendable, CustomStringConvertible {
    case invite, ack, cancel, bye, options, register
    case prack, subscribe, notify, publish, info, refer, message, update
    /// Any other token, kept as written (RFC 3261 §8.2.1: answered 405 by a UAS, forwarded by a proxy).
    case other(String)

    public init(_ token: String) {
        switch token {
        case "INVITE": self = .invite
        case "ACK": self = .ack
        case "CANCEL": self = .cancel
        case "BYE": self = .bye
        case "OPTIONS": self = .options
        case "REGISTER": self = .register
        case "PRACK": self = .prack
        case "SUBSCRIBE": self = .subscribe
        case "NOTIFY": self = .notify
        case "PUBLISH": self = .publish
        case "INFO": self = .info
        case "REFER": self = .refer
        case "MESSAGE": self = .message
        case "UPDATE": self = .update
        default: self = .other(token)
        }
    }

    public var name: String {
        switch self {
        case .invite: "INVITE"
        case .ack: "ACK"
        case .cancel: "CANCEL"
        case .bye: "BYE"
        case .options: "OPTIONS"
        case .register: "REGISTER"
        case .prack: "PRACK"
        case .subscribe: "SUBSCRIBE"
        case .notify: "NOTIFY"
        case .publish: "PUBLISH"
        case .info: "INFO"
        case .refer: "REFER"
        case .message: "MESSAGE"
        case .update: "UPDATE"
        case .other(let token): token
        }
    }

    public var description: String { name }

    /// Methods whose initial request creates a dialog a proxy stays in by Record-Route (RFC 3261
    /// §12.1, RFC 6665 §4.1 for SUBSCRIBE, RFC 3515 §2.4.5 for REFER's implicit subscription).
    public var createsDialog: Bool {
        switch self {
        case .invite, .subscribe, .refer: true
        default: false
        }
    }

    /// The methods Tandem handles itself or forwards: the `Allow` of its OPTIONS answer.
    public static let allowed: [SIPMethod] = [.invite, .ack, .cancel, .bye, .options, .message, .info, .update, .prack,
                                              .refer, .subscribe, .notify, .register]
}

extension SIPMessage {
    /// The request's method as a value; `nil` for a response.
    public var requestMethod: SIPMethod? { method.map(SIPMethod.init) }
}
