import JSON

extension RegistryStore {
    /// Lists a user may keep, and entries per list: enough for a household's address book, small
    /// enough that a watcher's whole list is one NOTIFY.
    public static let contactListLimit = 64
    public static let contactEntryLimit = 500

    static func contactList(_ row: Row) -> ContactList {
        let entries = (try? JSONValue.parse(row.text(2)))?.arrayValue?.compactMap { try? ContactListEntries.entry($0, "entries") } ?? []
        return ContactList(userID: row.text(0), name: row.text(1), entries: entries, updatedAt: row.text(3))
    }

    func fetchContactLists(_ userID: String) throws(RegistryError) -> [ContactList] {
        try rows("SELECT user_id, name, entries, updated_at FROM contact_lists WHERE user_id = ? ORDER BY name", [.text(userID)], Self.contactList)
    }

    /// A user's contact lists (the user, anyone of their account, or the operator).
    public func contactLists(userID: String, acting: String?) throws(RegistryError) -> [ContactList] {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requireMember(acting, account: user.accountID)
        return try fetchContactLists(userID)
    }

    /// Creates or replaces one list (the user, their primary, or the operator); records `contacts.changed`.
    public func defineContactList(userID: String, name: String, entries value: JSONValue, acting: String?) throws(RegistryError) -> ContactList {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "change this user's contact lists", orSelf: userID)
        let name = try Validate.identifier("list", name)
        let entries = try ContactListEntries.parse(value)
        var lists = Dictionary(uniqueKeysWithValues: try fetchContactLists(userID).map { ($0.name, $0) })
        if lists[name] == nil, lists.count >= Self.contactListLimit {
            throw .invalid("list", "user '\(userID)' has \(Self.contactListLimit) lists already")
        }
        for (index, entry) in entries.enumerated() {
            switch entry.kind {
            case .list:
                guard entry.value != name else { throw .invalid("entries[\(index)].list", "a list cannot include itself") }
                guard lists[entry.value] != nil else { throw .invalid("entries[\(index)].list", "user '\(userID)' has no list '\(entry.value)'") }
            case .user:
                guard try fetchUser(entry.value) != nil else { throw .invalid("entries[\(index)].user", "no user '\(entry.value)'") }
            case .number, .uri:
                break
            }
        }
        let list = ContactList(userID: userID, name: name, entries: entries, updatedAt: timestamp())
        lists[name] = list
        // A list reached again through its own entries would make membership depend on the path taken.
        if ContactListEntries.reaches(name, from: name, in: lists) {
            throw .invalid("entries", "list '\(name)' would include itself through another list")
        }
        try sql("""
            INSERT INTO contact_lists (user_id, name, entries, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (user_id, name) DO UPDATE SET entries = excluded.entries, updated_at = excluded.updated_at
            """, [.text(userID), .text(name), .text(ContactListEntries.json(entries).description), .text(list.updatedAt)])
        try recordEvent("contacts.changed", subject: userID, payload: [
            "user": .string(userID), "list": .string(name), "change": "defined", "entries": JSONValue(entries.count),
        ])
        // Availability rules resolve `list:NAME` when read: re-read the user's.
        touched.availabilities.insert(userID)
        return list
    }

    /// Deletes a list no availability rule and no other list of the user names.
    public func deleteContactList(userID: String, name: String, acting: String?) throws(RegistryError) {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "change this user's contact lists", orSelf: userID)
        let lists = try fetchContactLists(userID)
        guard lists.contains(where: { $0.name == name }) else { throw .notFound("list", "user '\(userID)' has no list '\(name)'") }
        if let other = lists.first(where: { $0.entries.contains { $0.kind == .list && $0.value == name } }) {
            throw .conflict("list", "list '\(other.name)' includes '\(name)'")
        }
        if let availability = try fetchAvailability(userID), let field = availability.reference(to: name) {
            throw .conflict("list", "the availability's \(field) names list '\(name)'")
        }
        try sql("DELETE FROM contact_lists WHERE user_id = ? AND name = ?", [.text(userID), .text(name)])
        try recordEvent("contacts.changed", subject: userID, payload: ["user": .string(userID), "list": .string(name), "change": "deleted"])
        touched.availabilities.insert(userID)
    }

    /// The members of every list the availability names, for `Availability.lists`.
    func resolveLists(_ availability: inout Availability) throws(RegistryError) {
        let names = availability.listReferences
        guard !names.isEmpty else {
            availability.lists = [:]
            return
        }
        let lists = Dictionary(uniqueKeysWithValues: try fetchContactLists(availability.userID).map { ($0.name, $0) })
        availability.lists = Dictionary(uniqueKeysWithValues: names.map { ($0, ContactList.members(of: $0, in: lists)) })
    }
}

extension Availability {
    /// Every entry list of the definition with its field name.
    var callerLists: [(String, [String])] {
        [("urgent", urgent), ("blocked", blocked), ("authorised", authorised), ("refused", refused)]
            + modes.flatMap { mode in [("mode '\(mode.name)' allow", mode.allow), ("mode '\(mode.name)' deny", mode.deny)] }
    }

    /// The contact lists the definition names (`list:NAME`).
    var listReferences: Set<String> {
        Set(callerLists.flatMap(\.1).compactMap { entry in
            entry.hasPrefix(ContactList.referencePrefix) ? String(entry.dropFirst(ContactList.referencePrefix.count)) : nil
        })
    }

    /// The field that names list `name`, if one does.
    func reference(to name: String) -> String? {
        callerLists.first { $0.1.contains(ContactList.referencePrefix + name) }?.0
    }
}

/// The JSON form of a list's entries: `[{"number": "+33…"}, {"user": "bob", "name": "Bob"}, {"uri": "sip:…"}, {"list": "family"}]`.
public enum ContactListEntries {
    public static func parse(_ value: JSONValue) throws(RegistryError) -> [ContactList.Entry] {
        guard let items = value.arrayValue else { throw .invalid("entries", "must be an array") }
        guard items.count <= RegistryStore.contactEntryLimit else {
            throw .invalid("entries", "more than \(RegistryStore.contactEntryLimit) entries")
        }
        var entries: [ContactList.Entry] = []
        for (index, item) in items.enumerated() {
            let entry = try entry(item, "entries[\(index)]")
            guard !entries.contains(where: { $0.kind == entry.kind && $0.value == entry.value }) else {
                throw .invalid("entries[\(index)]", "\(entry.kind.rawValue) '\(entry.value)' listed twice")
            }
            entries.append(entry)
        }
        return entries
    }

    static func entry(_ item: JSONValue, _ field: String) throws(RegistryError) -> ContactList.Entry {
        guard let object = item.objectValue else { throw .invalid(field, "must be an object") }
        let kinds = ContactList.Entry.Kind.allCases.filter { object[$0.rawValue] != nil }
        guard kinds.count == 1, let kind = kinds.first else {
            throw .invalid(field, "needs exactly one of number, user, uri, list")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != kind.rawValue && $0 != "name" }) {
            throw .invalid("\(field).\(unknown)", "unknown field (expected number, user, uri or list, and name)")
        }
        guard let text = object[kind.rawValue]?.stringValue else { throw .invalid("\(field).\(kind.rawValue)", "must be a string") }
        let valueField = "\(field).\(kind.rawValue)"
        let value: String
        switch kind {
        case .number: value = try Validate.e164(valueField, text)
        case .user, .list: value = try Validate.identifier(valueField, text)
        case .uri:
            let lowered = text.lowercased()
            guard lowered.hasPrefix("sip:") || lowered.hasPrefix("sips:") else { throw .invalid(valueField, "'\(text)' is not a sip: or sips: URI") }
            value = try Validate.sipURI(valueField, text).description
        }
        var name: String?
        if let label = object["name"] {
            guard let text = label.stringValue else { throw .invalid("\(field).name", "must be a string") }
            name = try Validate.text("\(field).name", text, maximum: 100)
        }
        return ContactList.Entry(kind: kind, value: value, name: name)
    }

    public static func json(_ entries: [ContactList.Entry]) -> JSONValue {
        .array(entries.map { entry in
            var object: [String: JSONValue] = [entry.kind.rawValue: .string(entry.value)]
            if let name = entry.name { object["name"] = .string(name) }
            return .object(object)
        })
    }

    /// Whether `target` is reached from the lists `start` includes.
    static func reaches(_ target: String, from start: String, in lists: [String: ContactList]) -> Bool {
        var seen: Set<String> = []
        var pending = (lists[start]?.entries ?? []).filter { $0.kind == .list }.map(\.value)
        while let next = pending.popLast() {
            if next == target { return true }
            guard seen.insert(next).inserted else { continue }
            pending += (lists[next]?.entries ?? []).filter { $0.kind == .list }.map(\.value)
        }
        return false
    }
}

extension RegistryStore {
    /// A user's answer to a watcher (`presence.authorise`): `allow` puts the watcher (a user id or
    /// E.164 number) on the `authorised` list and takes it off `refused`; `refuse` the reverse;
    /// `forget` takes it off both (a later subscription is pending again). Records `availability.changed`.
    public func authoriseWatcher(userID: String, watcher: String, decision: String, acting: String?) throws(RegistryError) -> Availability {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "answer this user's watchers", orSelf: userID)
        let watcher = watcher.hasPrefix("+") ? try Validate.e164("watcher", watcher) : try Validate.identifier("watcher", watcher)
        guard watcher != userID else { throw .invalid("watcher", "a user always sees their own state") }
        var availability = try fetchAvailability(userID) ?? .standard(userID: userID)
        availability.authorised.removeAll { $0 == watcher }
        availability.refused.removeAll { $0 == watcher }
        switch decision {
        case "allow": availability.authorised.append(watcher)
        case "refuse": availability.refused.append(watcher)
        case "forget": break
        default: throw .invalid("decision", "'\(decision)' is not allow, refuse or forget")
        }
        for (field, entries) in [("authorised", availability.authorised), ("refused", availability.refused)] where entries.count > AvailabilityDefinition.limit {
            throw .invalid(field, "more than \(AvailabilityDefinition.limit) entries: name a contact list instead")
        }
        return try storeAvailability(availability, change: "watcher")
    }
}
