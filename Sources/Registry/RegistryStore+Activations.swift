import JSON

extension RegistryStore {
    /// Subscribes a number to an app. The provider-specific subscriber ID is minted on first use per
    /// its scheme and kept for good (across deactivation and carrier switches); the routing info is
    /// the app's hop addressed to that ID. Records `app.activated` with the payload the provider receives.
    public func activate(number: String, appID: String, email: String?, acting: String?) throws(RegistryError) -> Activation {
        let record = try self.number(number, acting: nil)
        let app = try fetchApp(appID)
        guard let app else { throw .notFound("app", "no app '\(appID)'") }
        try requirePrimary(acting, account: record.accountID, "activate apps")
        let provider = try self.provider(app.providerID)
        let existing = try fetchActivations(number: record.number).first { $0.appID == appID }
        if existing?.status == .active { throw .conflict("app", "'\(appID)' is already active on \(record.number)") }
        let subscriberID = try subscriberID(for: record, provider: provider, email: email)
        let routing = try routing(app: app, provider: provider, subscriberID: subscriberID, carrier: record.providerID)
        let now = timestamp()
        try sql("""
            INSERT INTO activations (number, app_id, status, routing, activated_at, deactivated_at) VALUES (?, ?, 'active', ?, ?, NULL)
            ON CONFLICT (number, app_id) DO UPDATE SET status = 'active', routing = excluded.routing,
                activated_at = excluded.activated_at, deactivated_at = NULL
            """, [.text(record.number), .text(appID), .text(routing), .text(now)])
        let activation = Activation(number: record.number, appID: appID, providerID: provider.id, status: .active,
                                    subscriberID: subscriberID, routing: routing, activatedAt: now, deactivatedAt: nil)
        try recordEvent("app.activated", subject: record.number, payload: providerPayload("app.activated", activation, provider: provider, app: app, at: now))
        touched.activations.insert(record.number)
        return activation
    }

    /// The body a provider's webhook would receive. The number itself is shared only with providers
    /// that know subscribers by it (scheme `tn`); the others get their own subscriber ID.
    func providerPayload(_ type: String, _ activation: Activation, provider: Provider, app: App, at time: String) -> JSONValue {
        var payload: [String: JSONValue] = [
            "event": .string(type), "time": .string(time), "provider": .string(provider.id), "app": .string(app.id),
            "app_kind": .string(app.kind), "subscriber_id": .string(activation.subscriberID), "routing": .string(activation.routing),
        ]
        if provider.idScheme == .tn { payload["number"] = .string(activation.number) }
        return .object(payload)
    }

    public func deactivate(number: String, appID: String, acting: String?) throws(RegistryError) -> Activation {
        let record = try self.number(number, acting: nil)
        try requirePrimary(acting, account: record.accountID, "deactivate apps")
        let existing = try fetchActivations(number: record.number).first { $0.appID == appID }
        guard var activation = existing, activation.status == .active else {
            throw .notFound("app", "'\(appID)' is not active on \(record.number)")
        }
        let app = try self.app(appID)
        let provider = try self.provider(app.providerID)
        let now = timestamp()
        try sql("UPDATE activations SET status = 'inactive', deactivated_at = ? WHERE number = ? AND app_id = ?",
                [.text(now), .text(record.number), .text(appID)])
        activation.status = .inactive
        activation.deactivatedAt = now
        // A grant to an app the account no longer has would be a dangling promise.
        let stillActive = try count("""
            SELECT count(*) FROM activations a JOIN numbers n ON n.number = a.number
            WHERE a.app_id = ? AND a.status = 'active' AND n.account_id = ?
            """, [.text(appID), .text(record.accountID)])
        if stillActive == 0 {
            for user in try rows("SELECT g.user_id FROM grants g JOIN users u ON u.id = g.user_id WHERE g.service = ? AND u.account_id = ?",
                                 [.text(Service.app(appID)), .text(record.accountID)], { $0.text(0) }) {
                try sql("DELETE FROM grants WHERE user_id = ? AND service = ?", [.text(user), .text(Service.app(appID))])
                touched.users.insert(user)
            }
        }
        try recordEvent("app.deactivated", subject: record.number, payload: providerPayload("app.deactivated", activation, provider: provider, app: app, at: now))
        touched.activations.insert(record.number)
        return activation
    }

    public func activations(number: String?, appID: String?, providerID: String?, status: Activation.Status?,
                            limit: Int, offset: Int, acting: String?) throws(RegistryError) -> Page<Activation> {
        var filter = try accountFilter(acting, accountID: nil, condition: "a.number IN (SELECT number FROM numbers WHERE account_id = ?)")
        filter.add("a.number = ?", try number.map { n throws(RegistryError) in try Validate.e164("number", n) })
        filter.add("a.app_id = ?", appID)
        filter.add("p.provider_id = ?", providerID)
        filter.add("a.status = ?", status?.rawValue)
        let total = try count("SELECT count(*) FROM activations a JOIN apps p ON p.id = a.app_id" + filter.clause, filter.values)
        let items = try rows(Self.activationQuery + filter.clause + " ORDER BY a.number, p.position, a.app_id LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset), Self.activation)
        return Page(items: items, total: total)
    }

    // MARK: Subscriber IDs and routing info

    /// The ID `provider` knows this number's subscriber by: the stored one, or a new one per scheme.
    func subscriberID(for number: TelephoneNumber, provider: Provider, email: String?) throws(RegistryError) -> String {
        let stored = try rows("SELECT subscriber_id FROM subscriber_ids WHERE provider_id = ? AND number = ?",
                              [.text(provider.id), .text(number.number)], { $0.text(0) }).first
        if let stored {
            if let email, try Validate.email("email", email) != stored, provider.idScheme == .email {
                throw .conflict("email", "provider '\(provider.id)' already knows \(number.number) as \(stored)")
            }
            return stored
        }
        var attempts = 0
        while true {
            attempts += 1
            let candidate: String
            switch provider.idScheme {
            case .tn: candidate = number.number
            case .email:
                guard let email else { throw .invalid("email", "provider '\(provider.id)' knows subscribers by e-mail; give email") }
                candidate = try Validate.email("email", email)
            case .generated: candidate = "u\(MintedID.random(8))@\(provider.domain ?? provider.id)"
            case .template(let pattern):
                if pattern.contains("{owner}"), number.ownerUserID == nil {
                    throw .invalid("number", "provider '\(provider.id)' names subscribers by {owner}; \(number.number) is a household number")
                }
                candidate = pattern
                    .replacingOccurrences(of: "{number}", with: number.number)
                    .replacingOccurrences(of: "{digits}", with: String(number.number.dropFirst()))
                    .replacingOccurrences(of: "{account}", with: number.accountID)
                    .replacingOccurrences(of: "{owner}", with: number.ownerUserID ?? "")
                    .replacingOccurrences(of: "{random}", with: MintedID.random(8))
            }
            let taken = try count("SELECT count(*) FROM subscriber_ids WHERE provider_id = ? AND subscriber_id = ?",
                                  [.text(provider.id), .text(candidate)]) > 0
            if !taken {
                try sql("INSERT INTO subscriber_ids (provider_id, number, subscriber_id, created_at) VALUES (?, ?, ?, ?)",
                        [.text(provider.id), .text(number.number), .text(candidate), .text(timestamp())])
                return candidate
            }
            // Minted IDs retry on a collision; given or derived ones cannot.
            let random = provider.idScheme == .generated || provider.idScheme.text.contains("{random}")
            guard random, attempts < 8 else {
                throw .conflict(provider.idScheme == .email ? "email" : "number",
                                "provider '\(provider.id)' already knows another subscriber as '\(candidate)'")
            }
        }
    }

    /// The app's hop (its own, or its provider's first) addressed to the subscriber, with the number's
    /// carrier as the `carrier` parameter so the app knows where the call came from and returns to.
    func routing(app: App, provider: Provider, subscriberID: String, carrier: String?) throws(RegistryError) -> String {
        guard let hop = app.hop ?? provider.hops.first else {
            throw .invalid("app", "neither app '\(app.id)' nor provider '\(provider.id)' has a SIP hop")
        }
        let uri = try Validate.sipURI("hop", hop)
        var text = uri.scheme + ":" + Self.escapedUser(subscriberID) + "@"
        text += uri.host.contains(":") ? "[\(uri.host)]" : uri.host
        if let port = uri.port { text += ":\(port)" }
        for parameter in uri.parameters where parameter.name.lowercased() != "carrier" {
            text += ";" + parameter.name + (parameter.value.map { "=" + $0 } ?? "")
        }
        if let carrier { text += ";carrier=\(carrier)" }
        return text
    }

    /// RFC 3261 §25.1 `user`: unreserved and user-unreserved characters pass, the rest is %-escaped.
    static func escapedUser(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/".utf8)
        var out = ""
        for byte in text.utf8 {
            if allowed.contains(byte) { out.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2) }
        }
        return out
    }

    /// Recomputes routing for the activations matching `condition` (over `activations a JOIN apps p`).
    func regenerateRouting(where condition: String, _ values: [SQLValue]) throws(RegistryError) -> Int {
        let targets = try rows("SELECT a.number, a.app_id FROM activations a JOIN apps p ON p.id = a.app_id WHERE \(condition)",
                               values, { ($0.text(0), $0.text(1)) })
        for (number, appID) in targets {
            let record = try self.number(number, acting: nil)
            let app = try self.app(appID)
            let provider = try self.provider(app.providerID)
            let subscriber = try subscriberID(for: record, provider: provider, email: nil)
            let routing = try routing(app: app, provider: provider, subscriberID: subscriber, carrier: record.providerID)
            try sql("UPDATE activations SET routing = ? WHERE number = ? AND app_id = ?", [.text(routing), .text(number), .text(appID)])
            touched.activations.insert(number)
        }
        return targets.count
    }

    // MARK: Events

    /// `events.list`: one type or all, by cursor (the same read as `events.pull`).
    public func events(since: Int, type: String?, limit: Int) throws(RegistryError) -> [RegistryEvent] {
        let patterns = [try EventPattern(type ?? "*", field: "type")]
        return try events(after: since, matching: patterns, limit: limit).events
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
