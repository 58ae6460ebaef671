import JSON
import RegistryModel

extension RegistryStore {
    /// A user's messages waiting (none when nothing was ever reported).
    public func messageSummary(userID: String) throws(RegistryError) -> MessageSummary {
        try rows("SELECT new_messages, old_messages, urgent_new, urgent_old, account FROM message_waiting WHERE user_id = ?", [.text(userID)]) { row in
            MessageSummary(newMessages: row.int(0), oldMessages: row.int(1), urgentNew: row.int(2), urgentOld: row.int(3),
                           account: row.optionalText(4))
        }.first ?? .none
    }

    /// A user's messages waiting, for the admin socket (anyone of the user's account, or the operator).
    public func messageSummary(userID: String, acting: String?) throws(RegistryError) -> MessageSummary {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requireMember(acting, account: user.accountID)
        return try messageSummary(userID: userID)
    }

    /// Records what a voicemail application reports of a user's mailbox (the operator, the user or
    /// their primary) and `messages.changed` when a count changed; the user's subscribed phones are
    /// then notified (docs/presence.md).
    public func setMessageSummary(userID: String, _ summary: MessageSummary, acting: String?) throws(RegistryError) -> MessageSummary {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "report this user's messages", orSelf: userID)
        for (field, value) in [("new", summary.newMessages), ("old", summary.oldMessages), ("urgent_new", summary.urgentNew), ("urgent_old", summary.urgentOld)] {
            guard (0...MessageSummary.limit).contains(value) else { throw .invalid(field, "must be 0 to \(MessageSummary.limit)") }
        }
        guard summary.urgentNew <= summary.newMessages else { throw .invalid("urgent_new", "cannot exceed new (\(summary.newMessages))") }
        guard summary.urgentOld <= summary.oldMessages else { throw .invalid("urgent_old", "cannot exceed old (\(summary.oldMessages))") }
        if let account = summary.account {
            guard account.hasPrefix("sip:") || account.hasPrefix("sips:"), account.count <= 256,
                  !account.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\"" }) else {
                throw .invalid("account", "must be a SIP URI (sip:…) without spaces, at most 256 characters")
            }
        }
        let before = try messageSummary(userID: userID)
        guard before != summary else { return summary }
        try sql("""
            INSERT INTO message_waiting (user_id, new_messages, old_messages, urgent_new, urgent_old, account, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (user_id) DO UPDATE SET new_messages = excluded.new_messages, old_messages = excluded.old_messages,
                urgent_new = excluded.urgent_new, urgent_old = excluded.urgent_old, account = excluded.account, updated_at = excluded.updated_at
            """, [.text(userID), .int(summary.newMessages), .int(summary.oldMessages), .int(summary.urgentNew), .int(summary.urgentOld),
                  summary.account.map { .text($0) } ?? .null, .text(timestamp())])
        try recordEvent("messages.changed", subject: userID, payload: summary.json(user: userID))
        touched.messages.insert(userID)
        return summary
    }
}

extension MessageSummary {
    public func json(user: String) -> JSONValue {
        ["user": .string(user), "new": JSONValue(newMessages), "old": JSONValue(oldMessages), "urgent_new": JSONValue(urgentNew),
         "urgent_old": JSONValue(urgentOld), "account": JSONValue(account)]
    }
}
