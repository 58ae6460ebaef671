/// A user's named list of contacts: people the user knows by number, by Tandem user or by SIP
/// address, and other lists of theirs (a group: "family" inside "favourites"). Availability rules
/// name a list as `list:NAME`; a phone can watch a whole list's presence.
public struct ContactList: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// An E.164 number.
            case number
            /// A Tandem user id.
            case user
            /// A SIP or SIPS URI outside Tandem.
            case uri
            /// Another list of the same user.
            case list
        }
        public var kind: Kind
        public var value: String
        /// How the user labels the contact.
        public var name: String?

        public init(kind: Kind, value: String, name: String? = nil) {
            self.kind = kind
            self.value = value
            self.name = name
        }
    }

    public var userID: String
    public var name: String
    public var entries: [Entry]
    public var updatedAt: String

    public init(userID: String, name: String, entries: [Entry], updatedAt: String) {
        self.userID = userID
        self.name = name
        self.entries = entries
        self.updatedAt = updatedAt
    }

    /// What an availability entry `list:NAME` names.
    public static let referencePrefix = "list:"

    /// Every number, user id and URI a list holds, through the lists it includes (each list once,
    /// so a cycle ends).
    public static func members(of name: String, in lists: [String: ContactList]) -> Set<String> {
        var members: Set<String> = []
        var seen: Set<String> = []
        var pending = [name]
        while let next = pending.popLast() {
            guard seen.insert(next).inserted, let list = lists[next] else { continue }
            for entry in list.entries {
                if entry.kind == .list { pending.append(entry.value) } else { members.insert(entry.value) }
            }
        }
        return members
    }
}
