import RegistryModel
import Routing

/// What a watcher is shown of a resource: a presentity's connectability, a user's message counts or
/// presence watchers — or nothing yet, because the presentity has not authorised the watcher
/// (RFC 6665 `pending`), or never will (`rejected`).
public enum SubscriptionView: Sendable, Equatable {
    case state(ConnectabilityState)
    /// Subscription-State `pending`, no body: the presentity shares only with authorised
    /// watchers and has not (yet) authorised this one.
    case pending
    /// The presentity refused the watcher: the subscription ends with `reason=rejected`.
    case rejected
    /// `message-summary` (RFC 3842). Boxed: a view is kept twice per subscription (wanted, sent), and
    /// the counts would make every presence subscription's view as large as they are.
    indirect case messages(MessageSummary)
    /// `presence.winfo` (RFC 3857).
    case watchers([WatcherEntry])
}

/// The PIDF document (RFC 3863) of a connectability state, with RPID (RFC 4480) activities for
/// phones that show them and Tandem's own element carrying the exact state (docs/presence.md).
public enum PresenceDocument {
    public static let contentType = "application/pidf+xml"
    public static let namespace = "urn:tandem:params:xml:ns:connectability"

    /// `basic` status and RPID activity of each state. `basic` says whether a call reaches the user
    /// now; the activity tells closed states apart on phones that know RPID.
    public static func mapping(_ state: ConnectabilityState) -> (basic: String, activity: String?) {
        switch state {
        case .connectable: ("open", nil)
        case .notConnectable: ("closed", "busy")
        case .inTransfer: ("closed", "away")
        case .unknown: ("closed", "unknown")
        // Never rendered: an unauthorised watcher's subscription is pending, with no document.
        case .subjectToAuthorisation: ("closed", nil)
        }
    }

    /// The document for `entity` (the presentity's address of record, a SIP URI).
    public static func render(entity: String, state: ConnectabilityState) -> String {
        let (basic, activity) = mapping(state)
        // Lines end in CRLF, as the rest of a SIP message does.
        var lines = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
                + "xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" xmlns:c=\"\(namespace)\" entity=\"\(escaped(entity))\">",
            "<tuple id=\"t\"><status><basic>\(basic)</basic></status><c:connectability>\(state.rawValue)</c:connectability></tuple>",
        ]
        if let activity {
            lines.append("<dm:person id=\"p\"><rpid:activities><rpid:\(activity)/></rpid:activities></dm:person>")
        }
        lines.append("<note>\(state.rawValue.replacingOccurrences(of: "_", with: " "))</note>")
        lines.append("</presence>")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// XML character data and attribute values: the five predefined entities.
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
