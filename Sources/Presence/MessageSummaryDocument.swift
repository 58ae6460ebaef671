import RegistryModel

/// The `application/simple-message-summary` body of RFC 3842 §5.2.
public enum MessageSummaryDocument {
    public static let contentType = "application/simple-message-summary"

    public static func render(_ summary: MessageSummary) -> String {
        var lines = ["Messages-Waiting: " + (summary.newMessages > 0 ? "yes" : "no")]
        if let account = summary.account { lines.append("Message-Account: " + account) }
        lines.append("Voice-Message: \(summary.newMessages)/\(summary.oldMessages) (\(summary.urgentNew)/\(summary.urgentOld))")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

/// One watcher of a user's presence, as watcher information shows it (RFC 3858 §4.3).
public struct WatcherEntry: Sendable, Equatable {
    public enum Status: String, Sendable {
        case active, pending
    }

    /// The watcher's subscription (the `id` attribute).
    public var id: String
    /// The watching user's id.
    public var watcher: String
    /// The watcher's address, as their SUBSCRIBE's From named it.
    public var uri: String
    public var status: Status
    /// What put the subscription in its status: `subscribe`, or `approved` after being pending.
    public var event: String

    public init(id: String, watcher: String, uri: String, status: Status, event: String) {
        self.id = id
        self.watcher = watcher
        self.uri = uri
        self.status = status
        self.event = event
    }
}

/// The `application/watcherinfo+xml` document of RFC 3858: always the full list (`state="full"`),
/// each NOTIFY a higher `version`.
public enum WatcherInfoDocument {
    public static let contentType = "application/watcherinfo+xml"

    public static func render(resource: String, watchers: [WatcherEntry], version: UInt32) -> String {
        var lines = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"\(version)\" state=\"full\">",
            "<watcher-list resource=\"\(PresenceDocument.escaped(resource))\" package=\"presence\">",
        ]
        for entry in watchers {
            lines.append("<watcher id=\"\(PresenceDocument.escaped(entry.id))\" status=\"\(entry.status.rawValue)\" event=\"\(entry.event)\">"
                         + PresenceDocument.escaped(entry.uri) + "</watcher>")
        }
        lines += ["</watcher-list>", "</watcherinfo>"]
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
