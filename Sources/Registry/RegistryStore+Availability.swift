import JSON

extension RegistryStore {
    static let availabilityColumns = "user_id, definition, active_profile, override_mode, override_until, updated_at"

    /// A stored row; the definition was validated when written, so a row that no longer parses (a
    /// file edited by hand) degrades to the standard definition rather than failing the snapshot.
    static func availability(_ row: Row) -> Availability {
        let userID = row.text(0)
        var availability = (try? JSONValue.parse(row.text(1))).flatMap { try? AvailabilityDefinition.parse($0, userID: userID) }
            ?? Availability.standard(userID: userID)
        availability.activeProfile = row.text(2)
        if let mode = row.optionalText(3) {
            availability.override = Availability.Override(mode: mode, until: row.optionalInt(4).map(Int64.init))
        }
        availability.updatedAt = row.text(5)
        return availability
    }

    func fetchAvailability(_ userID: String) throws(RegistryError) -> Availability? {
        guard var availability = try firstRow("SELECT \(Self.availabilityColumns) FROM availability WHERE user_id = ?", [.text(userID)],
                                              Self.availability) else { return nil }
        try resolveLists(&availability)
        return availability
    }

    /// The user's availability: stored, or the standard one (always available) when never defined.
    public func availability(userID: String, acting: String?) throws(RegistryError) -> Availability {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requireMember(acting, account: user.accountID)
        return try fetchAvailability(userID) ?? .standard(userID: userID)
    }

    /// Replaces the user's whole definition (the user themself, their account's primary, or the
    /// operator). An override naming a mode the new definition lacks is dropped.
    public func defineAvailability(userID: String, definition: JSONValue, activeProfile: String?,
                                   acting: String?) throws(RegistryError) -> Availability {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "change this user's availability", orSelf: userID)
        var availability = try AvailabilityDefinition.parse(definition, userID: userID)
        let lists = Set(try fetchContactLists(userID).map(\.name))
        if let missing = availability.listReferences.sorted().first(where: { !lists.contains($0) }) {
            throw .invalid(availability.reference(to: missing) ?? "definition", "user '\(userID)' has no contact list '\(missing)'")
        }
        let previous = try fetchAvailability(userID)
        // docs/routing.md: the profile asked for, else the current one if the new definition still
        // has it, else the definition's first (a modes-only definition has just "default").
        let current = previous.map(\.activeProfile).flatMap { name in availability.profiles.contains { $0.name == name } ? name : nil }
        let profile = activeProfile ?? current ?? availability.profiles[0].name
        guard availability.profiles.contains(where: { $0.name == profile }) else {
            throw .invalid("active_profile", "no profile '\(profile)' in the definition")
        }
        availability.activeProfile = profile
        if let override = previous?.override, availability.mode(named: override.mode) != nil {
            availability.override = override
        }
        return try storeAvailability(availability, change: "defined")
    }

    /// Switches the active profile and/or sets or clears the override mode. `until` is milliseconds
    /// since the epoch; nil keeps the override until cleared.
    public func setAvailability(userID: String, mode: String??, until: Int64?, profile: String?,
                                acting: String?) throws(RegistryError) -> Availability {
        guard let user = try fetchUser(userID) else { throw .notFound("user", "no user '\(userID)'") }
        try requirePrimary(acting, account: user.accountID, "change this user's availability", orSelf: userID)
        var availability = try fetchAvailability(userID) ?? .standard(userID: userID)
        if let profile {
            guard availability.profiles.contains(where: { $0.name == profile }) else {
                throw .invalid("profile", "user '\(userID)' has no profile '\(profile)' (has \(availability.profiles.map(\.name).joined(separator: ", ")))")
            }
            availability.activeProfile = profile
        }
        switch mode {
        case .none:
            guard until == nil else { throw .invalid("until", "an expiry needs a mode") }
        case .some(.none):
            availability.override = nil
        case .some(.some(let name)):
            guard availability.mode(named: name) != nil else {
                throw .invalid("mode", "user '\(userID)' has no mode '\(name)' (has \(availability.modes.map(\.name).joined(separator: ", ")))")
            }
            if let until, until <= clock() { throw .invalid("until", "is in the past") }
            availability.override = Availability.Override(mode: name, until: until)
        }
        return try storeAvailability(availability, change: mode == nil ? "profile" : "override")
    }

    func storeAvailability(_ availability: Availability, change: String) throws(RegistryError) -> Availability {
        var availability = availability
        availability.updatedAt = timestamp()
        try sql("""
            INSERT INTO availability (user_id, definition, active_profile, override_mode, override_until, updated_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (user_id) DO UPDATE SET definition = excluded.definition, active_profile = excluded.active_profile,
                override_mode = excluded.override_mode, override_until = excluded.override_until, updated_at = excluded.updated_at
            """, [.text(availability.userID), .text(AvailabilityDefinition.json(availability).description), .text(availability.activeProfile),
                  .optional(availability.override?.mode), availability.override?.until.map { .integer($0) } ?? .null,
                  .text(availability.updatedAt)])
        try recordEvent("availability.changed", subject: availability.userID, payload: [
            "user": .string(availability.userID), "change": .string(change), "profile": .string(availability.activeProfile),
            "override": availability.override.map { ["mode": .string($0.mode), "until": $0.until.map { .integer($0) } ?? .null] } ?? .null,
        ])
        touched.availabilities.insert(availability.userID)
        return availability
    }
}

/// The JSON form of an availability definition, shared by the admin socket and the stored column.
public enum AvailabilityDefinition {
    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    static let limit = 64

    /// Validates a definition, naming the field at fault (`modes[1].state`).
    public static func parse(_ value: JSONValue, userID: String) throws(RegistryError) -> Availability {
        guard let object = value.objectValue else { throw .invalid("definition", "must be an object") }
        let known: Set<String> = ["modes", "profiles", "urgent", "blocked", "sharing", "authorised", "refused"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid(unknown, "unknown field (expected \(known.sorted().joined(separator: ", ")))")
        }
        var modes: [Availability.Mode] = []
        for (index, item) in try array(object["modes"], "modes").enumerated() {
            let field = "modes[\(index)]"
            guard let mode = item.objectValue else { throw .invalid(field, "must be an object") }
            let name = try Validate.identifier(field + ".name", try string(mode["name"], field + ".name"))
            guard !modes.contains(where: { $0.name == name }) else { throw .invalid(field + ".name", "mode '\(name)' defined twice") }
            let stateText = try string(mode["state"], field + ".state")
            guard let state = Availability.State(rawValue: stateText) else {
                throw .invalid(field + ".state", "'\(stateText)' is not one of \(Availability.State.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var target: String?
            if let text = mode["target"]?.stringValue {
                target = text.hasPrefix("+") ? try Validate.e164(field + ".target", text) : try Validate.sipUsername(field + ".target", text)
            } else if mode["target"] != nil && mode["target"] != .null {
                throw .invalid(field + ".target", "must be a string")
            }
            if state == .transfer && target == nil { throw .invalid(field + ".target", "a transfer mode needs its target number") }
            if state != .transfer && target != nil { throw .invalid(field + ".target", "only a transfer mode has a target") }
            var notify = Availability.Notify.ring
            if let text = mode["notify"]?.stringValue {
                guard let value = Availability.Notify(rawValue: text) else {
                    throw .invalid(field + ".notify", "'\(text)' is not one of ring, silent, none")
                }
                notify = value
            }
            modes.append(Availability.Mode(name: name, state: state, target: target, notify: notify,
                                           allow: try callers(mode["allow"], field + ".allow"),
                                           deny: try callers(mode["deny"], field + ".deny")))
        }
        var availability = Availability.standard(userID: userID)
        availability.modes = modes
        var profiles: [Availability.Profile] = []
        for (index, item) in try array(object["profiles"], "profiles").enumerated() {
            let field = "profiles[\(index)]"
            guard let profile = item.objectValue else { throw .invalid(field, "must be an object") }
            let name = try Validate.identifier(field + ".name", try string(profile["name"], field + ".name"))
            guard !profiles.contains(where: { $0.name == name }) else { throw .invalid(field + ".name", "profile '\(name)' defined twice") }
            let defaultMode = try profile["default_mode"].map { value throws(RegistryError) in try string(value, field + ".default_mode") } ?? "available"
            guard availability.mode(named: defaultMode) != nil else {
                throw .invalid(field + ".default_mode", "no mode '\(defaultMode)'")
            }
            var rules: [Availability.Rule] = []
            for (ruleIndex, ruleItem) in try array(profile["rules"], field + ".rules").enumerated() {
                let ruleField = "\(field).rules[\(ruleIndex)]"
                guard let rule = ruleItem.objectValue else { throw .invalid(ruleField, "must be an object") }
                let mode = try string(rule["mode"], ruleField + ".mode")
                guard availability.mode(named: mode) != nil else { throw .invalid(ruleField + ".mode", "no mode '\(mode)'") }
                rules.append(try self.rule(rule, mode: mode, ruleField))
            }
            profiles.append(Availability.Profile(name: name, defaultMode: defaultMode, rules: rules))
        }
        if profiles.isEmpty { profiles = [Availability.Profile(name: "default")] }
        availability.profiles = profiles
        availability.activeProfile = profiles[0].name
        availability.urgent = try callers(object["urgent"], "urgent")
        availability.blocked = try callers(object["blocked"], "blocked")
        availability.authorised = try callers(object["authorised"], "authorised")
        availability.refused = try callers(object["refused"], "refused")
        if let text = object["sharing"]?.stringValue {
            guard let sharing = Availability.Sharing(rawValue: text) else { throw .invalid("sharing", "'\(text)' is not everyone or authorised") }
            availability.sharing = sharing
        } else if object["sharing"] != nil {
            throw .invalid("sharing", "must be a string")
        }
        return availability
    }

    /// The stored and reported form (without the user, the active profile and the override).
    public static func json(_ availability: Availability) -> JSONValue {
        let time = Availability.clockText
        return [
            "modes": .array(availability.modes.map { mode in
                var object: [String: JSONValue] = ["name": .string(mode.name), "state": .string(mode.state.rawValue),
                                                   "notify": .string(mode.notify.rawValue), "allow": JSONValue(mode.allow),
                                                   "deny": JSONValue(mode.deny)]
                if let target = mode.target { object["target"] = .string(target) }
                return .object(object)
            }),
            "profiles": .array(availability.profiles.map { profile in
                ["name": .string(profile.name), "default_mode": .string(profile.defaultMode),
                 "rules": .array(profile.rules.map { rule in
                     var object: [String: JSONValue] = [
                         "days": JSONValue(rule.days.sorted().map { dayNames[$0 - 1] }), "from": .string(time(rule.start)),
                         "to": .string(time(rule.end)), "mode": .string(rule.mode),
                     ]
                     if !rule.dates.isEmpty { object["dates"] = JSONValue(rule.dateTexts) }
                     if !rule.monthDays.isEmpty { object["monthdays"] = .array(rule.monthDays.sorted().map { .integer(Int64($0)) }) }
                     if !rule.monthWeeks.isEmpty { object["month_weeks"] = .array(rule.monthWeeks.sorted().map { .integer(Int64($0)) }) }
                     if !rule.yearDays.isEmpty { object["yearly"] = JSONValue(rule.yearDayTexts) }
                     return .object(object)
                 })]
            }),
            "urgent": JSONValue(availability.urgent), "blocked": JSONValue(availability.blocked),
            "sharing": .string(availability.sharing.rawValue), "authorised": JSONValue(availability.authorised),
            "refused": JSONValue(availability.refused),
        ]
    }

    private static func array(_ value: JSONValue?, _ field: String) throws(RegistryError) -> [JSONValue] {
        guard let value, value != .null else { return [] }
        guard let items = value.arrayValue else { throw .invalid(field, "must be an array") }
        guard items.count <= limit else { throw .invalid(field, "more than \(limit) entries") }
        return items
    }

    private static func string(_ value: JSONValue?, _ field: String) throws(RegistryError) -> String {
        guard let value else { throw .invalid(field, "is required") }
        guard let text = value.stringValue else { throw .invalid(field, "must be a string") }
        return text
    }

    /// Caller entries: E.164 numbers, user ids, or contact lists (`list:NAME`).
    private static func callers(_ value: JSONValue?, _ field: String) throws(RegistryError) -> [String] {
        var result: [String] = []
        for (index, item) in try array(value, field).enumerated() {
            let entry = try string(item, "\(field)[\(index)]")
            if entry.hasPrefix(ContactList.referencePrefix) {
                let name = try Validate.identifier("\(field)[\(index)]", String(entry.dropFirst(ContactList.referencePrefix.count)))
                result.append(ContactList.referencePrefix + name)
            } else if entry.hasPrefix("+") {
                result.append(try Validate.e164("\(field)[\(index)]", entry))
            } else {
                result.append(try Validate.identifier("\(field)[\(index)]", entry))
            }
        }
        return result
    }

    /// `["mon-fri", "sun"]`: day names and ranges, Monday first.
    /// A rule: a window on days of the week, held to a calendar when it has one (docs/routing.md).
    private static func rule(_ rule: [String: JSONValue], mode: String, _ field: String) throws(RegistryError) -> Availability.Rule {
        let known: Set<String> = ["mode", "days", "from", "to", "dates", "monthdays", "month_weeks", "yearly"]
        if let unknown = rule.keys.sorted().first(where: { !known.contains($0) }) {
            throw .invalid("\(field).\(unknown)", "unknown field (expected \(known.sorted().joined(separator: ", ")))")
        }
        var result = Availability.Rule(days: Set(1...7), start: 0, end: 1440, mode: mode)
        for (index, item) in try array(rule["dates"], field + ".dates").enumerated() {
            let text = try string(item, "\(field).dates[\(index)]")
            let ends = text.components(separatedBy: "..")
            guard (1...2).contains(ends.count), let first = CivilDate(parsing: ends[0]), let last = CivilDate(parsing: ends[ends.count - 1]),
                  first <= last else {
                throw .invalid("\(field).dates[\(index)]", "'\(text)' is not a date (YYYY-MM-DD) or a range of dates (YYYY-MM-DD..YYYY-MM-DD)")
            }
            result.dates.append(first.days...last.days)
        }
        for (index, item) in try array(rule["monthdays"], field + ".monthdays").enumerated() {
            guard let day = item.integerValue, (1...31).contains(day) || day == -1 else {
                throw .invalid("\(field).monthdays[\(index)]", "must be a day of the month, 1 to 31, or -1 for the last day")
            }
            result.monthDays.insert(Int(day))
        }
        for (index, item) in try array(rule["month_weeks"], field + ".month_weeks").enumerated() {
            guard let week = item.integerValue, (1...5).contains(week) || week == -1 else {
                throw .invalid("\(field).month_weeks[\(index)]", "must be 1 to 5 (the first … fifth such weekday of the month) or -1 (the last)")
            }
            result.monthWeeks.insert(Int(week))
        }
        for (index, item) in try array(rule["yearly"], field + ".yearly").enumerated() {
            let text = try string(item, "\(field).yearly[\(index)]")
            // Any leap year admits every month-day, 29 February included.
            guard let date = CivilDate(parsing: "2000-" + text) else {
                throw .invalid("\(field).yearly[\(index)]", "'\(text)' is not a day of the year (MM-DD)")
            }
            result.yearDays.insert(date.month * 100 + date.day)
        }
        if let value = rule["days"] {
            result.days = try days(value, field + ".days")
        } else if !result.hasCalendar {
            throw .invalid(field + ".days", "is required unless the rule has dates, monthdays, month_weeks or yearly")
        }
        switch (rule["from"], rule["to"]) {
        case (nil, nil): break
        case (let from?, let to?):
            result.start = try minutes(from, field + ".from")
            result.end = try minutes(to, field + ".to")
        case (nil, _): throw .invalid(field + ".from", "is required with to (leave both out for the whole day)")
        case (_, nil): throw .invalid(field + ".to", "is required with from (leave both out for the whole day)")
        }
        return result
    }

    private static func days(_ value: JSONValue?, _ field: String) throws(RegistryError) -> Set<Int> {
        var days: Set<Int> = []
        let items = try array(value, field)
        guard !items.isEmpty else { throw .invalid(field, "names no day (e.g. [\"mon-fri\"])") }
        for (index, item) in items.enumerated() {
            let text = try string(item, "\(field)[\(index)]").lowercased()
            let ends = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard (1...2).contains(ends.count), let first = dayNames.firstIndex(of: ends[0]),
                  let last = dayNames.firstIndex(of: ends[ends.count - 1]), first <= last else {
                throw .invalid("\(field)[\(index)]", "'\(text)' is not a day (mon … sun) or a range of days (mon-fri)")
            }
            for day in first...last { days.insert(day + 1) }
        }
        return days
    }

    /// `HH:MM`, 00:00 to 24:00.
    private static func minutes(_ value: JSONValue?, _ field: String) throws(RegistryError) -> Int {
        let text = try string(value, field)
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]), let minutes = Int(parts[1]),
              (0...24).contains(hours), (0...59).contains(minutes), hours * 60 + minutes <= 1440 else {
            throw .invalid(field, "'\(text)' is not a time of day (HH:MM, 00:00 to 24:00)")
        }
        return hours * 60 + minutes
    }
}
