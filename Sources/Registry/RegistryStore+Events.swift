import JSON

/// Which event types a subscriber, a pull or a service means: `call.ended` exactly, `call.*` every
/// type under `call.`, or `*` all of them.
public struct EventPattern: Sendable, Hashable, CustomStringConvertible {
    public let text: String

    public init(_ text: String, field: String = "types") throws(RegistryError) {
        let body = text.hasSuffix(".*") ? String(text.dropLast(2)) : text
        guard text == "*" || (!body.isEmpty && body.utf8.count <= 64 && body.utf8.allSatisfy({ byte in
            (97...122).contains(byte) || (48...57).contains(byte) || byte == 95 || byte == 46
        }) && !body.hasPrefix(".") && !body.hasSuffix(".") && !body.contains("..")) else {
            throw .invalid(field, "'\(text)' is not an event type (`call.ended`), a family (`call.*`) or `*`")
        }
        self.text = text
    }

    public func matches(_ type: String) -> Bool {
        if text == "*" { return true }
        if text.hasSuffix(".*") { return type.hasPrefix(text.dropLast()) }
        return type == text
    }

    public var description: String { text }

    /// The patterns of a `types` parameter; none means every type.
    public static func list(_ texts: [String]?, field: String = "types") throws(RegistryError) -> [EventPattern] {
        guard let texts, !texts.isEmpty else { return [try EventPattern("*")] }
        guard texts.count <= 64 else { throw .invalid(field, "at most 64 types") }
        return try texts.map { text throws(RegistryError) in try EventPattern(text, field: field) }
    }

    /// The SQL condition on `type` (GLOB for families: `_` is not a wildcard there, unlike LIKE).
    static func condition(_ patterns: [EventPattern]) -> (String, [SQLValue]) {
        if patterns.contains(where: { $0.text == "*" }) { return ("", []) }
        let parts = patterns.map { $0.text.hasSuffix(".*") ? "type GLOB ?" : "type = ?" }
        return (" AND (" + parts.joined(separator: " OR ") + ")", patterns.map { .text($0.text) })
    }
}

extension RegistryEvent {
    /// The event as `events.pull` and push notifications carry it.
    public var json: JSONValue {
        ["id": JSONValue(id), "time": .string(time), "type": .string(type), "source": .string(source),
         "subject": JSONValue(subject), "payload": (try? JSONValue.parse(payload)) ?? .string(payload)]
    }
}

/// One event owed to a webhook recipient, and how delivering it went.
public struct EventDelivery: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable { case pending, delivered, failed }
    /// `provider:ID`.
    public var recipient: String
    public var eventID: Int
    public var status: Status
    public var attempts: Int
    /// Milliseconds since the epoch before which it is not tried again.
    public var nextAttempt: Int64
    /// The HTTP status of the last attempt, when one came back.
    public var lastStatus: Int?
    public var lastError: String?
    public var deliveredAt: String?

    public var json: JSONValue {
        ["recipient": .string(recipient), "event_id": JSONValue(eventID), "status": .string(status.rawValue),
         "attempts": JSONValue(attempts), "next_attempt": JSONValue(Timestamp.rfc3339(milliseconds: nextAttempt)),
         "last_status": lastStatus.map { JSONValue($0) } ?? .null, "last_error": JSONValue(lastError), "delivered_at": JSONValue(deliveredAt)]
    }
}

/// How one delivery attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(status: Int)
    /// Tried again at `retryAt`, or given up (`failed`) when nil.
    case failed(status: Int?, error: String, retryAt: Int64?)
}

/// A named push subscriber's position: every event of its types up to `cursor` was sent to it.
public struct EventSubscriber: Sendable, Equatable {
    public var name: String
    public var types: [String]
    public var cursor: Int
    public var updatedAt: String

    public var json: JSONValue {
        ["name": .string(name), "types": JSONValue(types), "cursor": JSONValue(cursor), "updated_at": .string(updatedAt)]
    }
}

extension RegistryStore {
    // MARK: Reading the log

    /// The newest event's id (0 for none).
    public func eventHead() throws(RegistryError) -> Int {
        try count("SELECT COALESCE(MAX(id), 0) FROM events")
    }

    /// Events after `cursor` whose type matches, oldest first, and how far the log was read: a
    /// filtered page advances past the events it skipped, so the next read starts after them.
    ///
    /// Ids grow in commit order — every write goes through the registry's one connection, one
    /// transaction at a time — so an event can never appear later below a cursor already handed out.
    public func events(after cursor: Int, matching patterns: [EventPattern], limit: Int) throws(RegistryError) -> (events: [RegistryEvent], through: Int) {
        guard cursor >= 0 else { throw .invalid("since", "must not be negative") }
        guard (1...10_000).contains(limit) else { throw .invalid("limit", "must be from 1 to 10000") }
        let head = try eventHead()
        let (condition, values) = EventPattern.condition(patterns)
        let events = try rows("SELECT id, time, type, source, subject, payload FROM events WHERE id > ? AND id <= ?\(condition) ORDER BY id LIMIT ?",
                              [.int(cursor), .int(head)] + values + [.int(limit)], Self.event)
        return (events, events.count == limit ? events[events.count - 1].id : max(cursor, head))
    }

    public func event(_ id: Int) throws(RegistryError) -> RegistryEvent {
        guard let event = try firstRow("SELECT id, time, type, source, subject, payload FROM events WHERE id = ?", [.int(id)], Self.event) else {
            throw .notFound("id", "no event \(id)")
        }
        return event
    }

    static func event(_ row: Row) -> RegistryEvent {
        RegistryEvent(id: row.int(0), time: row.text(1), type: row.text(2), source: row.text(3), subject: row.optionalText(4), payload: row.text(5))
    }

    /// Appends an event a registered service emits (`events.emit`).
    public func emitEvent(_ type: String, subject: String?, payload: JSONValue, source: String) throws(RegistryError) -> Int {
        try recordEvent(type, subject: subject, payload: payload, source: source)
    }

    // MARK: Fan-out to webhooks

    /// The last event the dispatcher has fanned out.
    public func dispatchCursor() throws(RegistryError) -> Int {
        let text = try firstRow("SELECT value FROM tandem_meta WHERE key = 'event_dispatch_cursor'", [], { $0.text(0) })
        return text.flatMap { Int($0) } ?? 0
    }

    /// Owes each `(recipient, event)` a delivery and moves the dispatch cursor, in the caller's
    /// transaction: both or neither.
    public func recordDispatch(through cursor: Int, deliveries: [(recipient: String, eventID: Int)], now: Int64) throws(RegistryError) {
        for delivery in deliveries {
            try sql("INSERT OR IGNORE INTO event_deliveries (recipient, event_id, status, attempts, next_attempt) VALUES (?, ?, 'pending', 0, ?)",
                    [.text(delivery.recipient), .int(delivery.eventID), .integer(now)])
        }
        try sql("INSERT OR REPLACE INTO tandem_meta (key, value) VALUES ('event_dispatch_cursor', ?)", [.text(String(cursor))])
    }

    static let deliveryColumns = "recipient, event_id, status, attempts, next_attempt, last_status, last_error, delivered_at"
    static func delivery(_ row: Row) -> EventDelivery {
        EventDelivery(recipient: row.text(0), eventID: row.int(1), status: EventDelivery.Status(rawValue: row.text(2)) ?? .pending,
                      attempts: row.int(3), nextAttempt: Int64(row.int(4)), lastStatus: row.optionalInt(5),
                      lastError: row.optionalText(6), deliveredAt: row.optionalText(7))
    }

    /// The recipient's oldest pending delivery and its event: deliveries to one recipient go in order.
    public func nextDelivery(recipient: String) throws(RegistryError) -> (EventDelivery, RegistryEvent)? {
        guard let delivery = try firstRow("""
            SELECT \(Self.deliveryColumns) FROM event_deliveries WHERE recipient = ? AND status = 'pending' ORDER BY event_id LIMIT 1
            """, [.text(recipient)], Self.delivery) else { return nil }
        return (delivery, try event(delivery.eventID))
    }

    /// Recipients with something pending.
    public func pendingRecipients() throws(RegistryError) -> [String] {
        try rows("SELECT DISTINCT recipient FROM event_deliveries WHERE status = 'pending'", [], { $0.text(0) })
    }

    public func recordAttempt(recipient: String, eventID: Int, _ outcome: DeliveryOutcome) throws(RegistryError) {
        switch outcome {
        case .delivered(let status):
            try sql("""
                UPDATE event_deliveries SET status = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL, delivered_at = ?
                WHERE recipient = ? AND event_id = ?
                """, [.int(status), .text(timestamp()), .text(recipient), .int(eventID)])
        case .failed(let status, let error, let retryAt):
            try sql("""
                UPDATE event_deliveries SET status = ?, attempts = attempts + 1, last_status = ?, last_error = ?, next_attempt = ?
                WHERE recipient = ? AND event_id = ?
                """, [.text(retryAt == nil ? "failed" : "pending"), status.map { .int($0) } ?? .null, .text(error),
                      .integer(retryAt ?? clock()), .text(recipient), .int(eventID)])
        }
    }

    public func deliveries(recipient: String?, eventID: Int?, status: EventDelivery.Status?, limit: Int, offset: Int) throws(RegistryError) -> Page<EventDelivery> {
        var filter = Filter()
        filter.add("recipient = ?", recipient)
        filter.add("status = ?", status?.rawValue)
        if let eventID {
            filter.conditions.append("event_id = ?")
            filter.values.append(.int(eventID))
        }
        let values = filter.values
        let total = try count("SELECT count(*) FROM event_deliveries" + filter.clause, values)
        let items = try rows("SELECT \(Self.deliveryColumns) FROM event_deliveries\(filter.clause) ORDER BY event_id, recipient LIMIT ? OFFSET ?",
                             values + Self.paging(limit, offset), Self.delivery)
        return Page(items: items, total: total)
    }

    /// Puts a recipient's failed deliveries back in its queue, in order, to be tried now.
    public func retryFailedDeliveries(recipient: String) throws(RegistryError) -> Int {
        try sql("UPDATE event_deliveries SET status = 'pending', attempts = 0, next_attempt = ? WHERE recipient = ? AND status = 'failed'",
                [.integer(clock()), .text(recipient)])
        return database.changes
    }

    // MARK: Named push subscribers

    public func subscriber(_ name: String) throws(RegistryError) -> EventSubscriber? {
        try firstRow("SELECT name, types, cursor, updated_at FROM event_subscribers WHERE name = ?", [.text(name)], Self.subscriber)
    }

    public func subscribers() throws(RegistryError) -> [EventSubscriber] {
        try rows("SELECT name, types, cursor, updated_at FROM event_subscribers ORDER BY name", [], Self.subscriber)
    }

    static func subscriber(_ row: Row) -> EventSubscriber {
        EventSubscriber(name: row.text(0), types: (try? JSONValue.parse(row.text(1)))?.arrayValue?.compactMap(\.stringValue) ?? [],
                        cursor: row.int(2), updatedAt: row.text(3))
    }

    /// Saves where a named subscriber is; a cursor never moves back (a late save of an older position
    /// would make it receive events twice).
    public func saveSubscriber(name: String, types: [EventPattern], cursor: Int) throws(RegistryError) {
        let name = try Validate.identifier("name", name)
        try sql("""
            INSERT INTO event_subscribers (name, types, cursor, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET types = excluded.types, cursor = max(cursor, excluded.cursor), updated_at = excluded.updated_at
            """, [.text(name), .text(JSONValue(types.map(\.text)).description), .int(cursor), .text(timestamp())])
    }

    public func deleteSubscriber(_ name: String) throws(RegistryError) {
        try sql("DELETE FROM event_subscribers WHERE name = ?", [.text(name)])
        guard database.changes == 1 else { throw .notFound("name", "no subscriber '\(name)'") }
    }
}
