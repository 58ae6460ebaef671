import Crypto
import JSON

/// The fields of a provider a call may set; nil leaves a field as it is.
public struct ProviderFields: Sendable {
    public var name: String?
    public var kind: Provider.Kind?
    public var hops: [String]?
    public var trustedSources: [String]?
    public var idScheme: String?
    public var domain: String?
    public var webhookURL: String?
    /// At least 16 characters; empty mints a new one.
    public var webhookSecret: String?
    public var currency: String?
    public var ratePerMinute: Int?
    public var monthlyFee: Int?
    public init() {}
}

/// The fields of an app a call may set; nil leaves a field as it is.
public struct AppFields: Sendable {
    public var name: String?
    public var kind: String?
    public var position: Int?
    public var onFailure: App.OnFailure?
    public var hop: String?
    public init() {}
}

extension RegistryStore {
    // MARK: Providers

    public func createProvider(id: String, fields: ProviderFields, acting: String?) throws(RegistryError) -> Provider {
        try requireOperator(acting, "create providers")
        let id = try Validate.identifier("id", id)
        guard try count("SELECT count(*) FROM providers WHERE id = ?", [.text(id)]) == 0 else {
            throw .conflict("id", "provider '\(id)' already exists")
        }
        guard let name = fields.name else { throw .invalid("name", "required") }
        let now = timestamp()
        var provider = Provider(id: id, name: name, kind: fields.kind ?? .app, hops: [], trustedSources: [], idScheme: .tn,
                                domain: nil, webhookURL: nil, currency: "EUR", ratePerMinute: 0, monthlyFee: 0,
                                createdAt: now, updatedAt: now)
        try apply(fields, to: &provider)
        try sql("INSERT INTO providers (\(Self.providerColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", Self.values(provider))
        touched.providers.insert(id)
        return provider
    }

    static func values(_ p: Provider) -> [SQLValue] {
        [.text(p.id), .text(p.name), .text(p.kind.rawValue), .text(JSONValue(p.hops).description),
         .text(JSONValue(p.trustedSources).description), .text(p.idScheme.text), .optional(p.domain), .optional(p.webhookURL),
         .text(p.currency), .int(p.ratePerMinute), .int(p.monthlyFee), .text(p.createdAt), .text(p.updatedAt), .optional(p.webhookSecret)]
    }

    func apply(_ fields: ProviderFields, to provider: inout Provider) throws(RegistryError) {
        if let name = fields.name { provider.name = try Validate.text("name", name) }
        if let kind = fields.kind { provider.kind = kind }
        if let hops = fields.hops {
            provider.hops = try hops.map { hop throws(RegistryError) in _ = try Validate.sipURI("hops", hop); return hop }
        }
        if let sources = fields.trustedSources {
            provider.trustedSources = try sources.map { s throws(RegistryError) in try Validate.addressBlock("trusted_sources", s) }
        }
        if let scheme = fields.idScheme { provider.idScheme = try Validate.idScheme("id_scheme", scheme) }
        if let domain = fields.domain { provider.domain = domain.isEmpty ? nil : try Validate.domain("domain", domain) }
        if let url = fields.webhookURL { provider.webhookURL = url.isEmpty ? nil : try Validate.webhookURL("webhook_url", url) }
        if let secret = fields.webhookSecret {
            guard secret.isEmpty || (16...256).contains(secret.utf8.count) else {
                throw .invalid("webhook_secret", "must be 16 to 256 characters (empty mints a new one)")
            }
            provider.webhookSecret = secret.isEmpty ? nil : secret
        }
        // Deliveries are signed from the first one: a provider never receives an unsigned body.
        if provider.webhookURL != nil, provider.webhookSecret == nil { provider.webhookSecret = Hex.encode(secureRandomBytes(32)) }
        if let currency = fields.currency { provider.currency = try Validate.currency("currency", currency) }
        if let rate = fields.ratePerMinute { provider.ratePerMinute = try Validate.amount("rate_per_minute", rate) }
        if let fee = fields.monthlyFee { provider.monthlyFee = try Validate.amount("monthly_fee", fee) }
        if provider.idScheme == .generated, provider.domain == nil {
            throw .invalid("domain", "the generated ID scheme mints IDs under the provider's domain; give domain")
        }
        if provider.kind != .carrier, provider.hops.isEmpty {
            throw .invalid("hops", "an app provider needs at least one SIP hop")
        }
    }

    public func provider(_ id: String) throws(RegistryError) -> Provider {
        guard let provider = try fetchProvider(id) else { throw .notFound("id", "no provider '\(id)'") }
        return provider
    }

    public func providers(kind: Provider.Kind?, limit: Int, offset: Int) throws(RegistryError) -> Page<Provider> {
        var filter = Filter()
        filter.add("kind = ?", kind?.rawValue)
        let total = try count("SELECT count(*) FROM providers" + filter.clause, filter.values)
        let items = try rows("SELECT \(Self.providerColumns) FROM providers\(filter.clause) ORDER BY id LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset), Self.provider)
        return Page(items: items, total: total)
    }

    /// Changing hops regenerates the routing info of every activation of the provider's apps.
    /// Existing subscriber IDs never change, even when the ID scheme does: the provider knows its
    /// subscribers by them.
    public func updateProvider(_ id: String, fields: ProviderFields, acting: String?) throws(RegistryError) -> Provider {
        try requireOperator(acting, "change providers")
        var provider = try self.provider(id)
        if let kind = fields.kind, kind == .app,
           try count("SELECT count(*) FROM numbers WHERE provider_id = ?", [.text(id)]) > 0 {
            throw .conflict("kind", "provider '\(id)' is the carrier of numbers; it cannot become app-only")
        }
        try apply(fields, to: &provider)
        provider.updatedAt = timestamp()
        try sql("""
            UPDATE providers SET name = ?, kind = ?, hops = ?, trusted_sources = ?, id_scheme = ?, domain = ?, webhook_url = ?,
            currency = ?, rate_per_minute = ?, monthly_fee = ?, created_at = ?, updated_at = ?, webhook_secret = ? WHERE id = ?
            """, Array(Self.values(provider).dropFirst()) + [.text(id)])
        if fields.hops != nil {
            _ = try regenerateRouting(where: "p.provider_id = ?", [.text(id)])
        }
        touched.providers.insert(id)
        return provider
    }

    public func deleteProvider(_ id: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete providers")
        _ = try provider(id)
        let apps = try count("SELECT count(*) FROM apps WHERE provider_id = ?", [.text(id)])
        let numbers = try count("SELECT count(*) FROM numbers WHERE provider_id = ?", [.text(id)])
        let subscribers = try count("SELECT count(*) FROM subscriber_ids WHERE provider_id = ?", [.text(id)])
        guard apps == 0, numbers == 0, subscribers == 0 else {
            throw .conflict("id", "provider '\(id)' still has \(apps) app(s), carries \(numbers) number(s) and knows \(subscribers) subscriber(s)")
        }
        try sql("DELETE FROM providers WHERE id = ?", [.text(id)])
        touched.providers.insert(id)
    }

    // MARK: Apps

    public func createApp(id: String, providerID: String, fields: AppFields, acting: String?) throws(RegistryError) -> App {
        try requireOperator(acting, "create apps")
        let id = try Validate.identifier("id", id)
        let provider = try fetchProvider(providerID)
        guard let provider else { throw .notFound("provider", "no provider '\(providerID)'") }
        guard provider.kind != .carrier else { throw .invalid("provider", "provider '\(providerID)' is a carrier, not an app provider") }
        guard try count("SELECT count(*) FROM apps WHERE id = ?", [.text(id)]) == 0 else { throw .conflict("id", "app '\(id)' already exists") }
        guard let name = fields.name else { throw .invalid("name", "required") }
        guard fields.kind != nil else { throw .invalid("kind", "required: one of \(App.kinds.joined(separator: ", "))") }
        let now = timestamp()
        var app = App(id: id, providerID: providerID, name: name, kind: "other", position: 100, onFailure: .skip, hop: nil,
                      createdAt: now, updatedAt: now)
        try apply(fields, to: &app)
        try sql("INSERT INTO apps (\(Self.appColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(id), .text(providerID), .text(app.name), .text(app.kind), .int(app.position), .text(app.onFailure.rawValue),
                 .optional(app.hop), .text(now), .text(now)])
        touched.apps.insert(id)
        return app
    }

    func apply(_ fields: AppFields, to app: inout App) throws(RegistryError) {
        if let name = fields.name { app.name = try Validate.text("name", name) }
        if let kind = fields.kind {
            guard App.kinds.contains(kind) else { throw .invalid("kind", "'\(kind)' is not one of \(App.kinds.joined(separator: ", "))") }
            app.kind = kind
        }
        if let position = fields.position {
            guard (0...1000).contains(position) else { throw .invalid("position", "must be from 0 to 1000") }
            app.position = position
        }
        if let onFailure = fields.onFailure { app.onFailure = onFailure }
        if let hop = fields.hop {
            if hop.isEmpty { app.hop = nil } else { _ = try Validate.sipURI("hop", hop); app.hop = hop }
        }
    }

    public func app(_ id: String) throws(RegistryError) -> App {
        guard let app = try fetchApp(id) else { throw .notFound("id", "no app '\(id)'") }
        return app
    }

    public func apps(providerID: String?, kind: String?, limit: Int, offset: Int) throws(RegistryError) -> Page<App> {
        var filter = Filter()
        filter.add("provider_id = ?", providerID)
        filter.add("kind = ?", kind)
        let total = try count("SELECT count(*) FROM apps" + filter.clause, filter.values)
        let items = try rows("SELECT \(Self.appColumns) FROM apps\(filter.clause) ORDER BY position, id LIMIT ? OFFSET ?",
                             filter.values + Self.paging(limit, offset), Self.app)
        return Page(items: items, total: total)
    }

    public func updateApp(_ id: String, fields: AppFields, acting: String?) throws(RegistryError) -> App {
        try requireOperator(acting, "change apps")
        var app = try self.app(id)
        try apply(fields, to: &app)
        app.updatedAt = timestamp()
        try sql("UPDATE apps SET name = ?, kind = ?, position = ?, on_failure = ?, hop = ?, updated_at = ? WHERE id = ?",
                [.text(app.name), .text(app.kind), .int(app.position), .text(app.onFailure.rawValue), .optional(app.hop),
                 .text(app.updatedAt), .text(id)])
        if fields.hop != nil || fields.position != nil {
            _ = try regenerateRouting(where: "a.app_id = ?", [.text(id)])
            // Chain order in the snapshot follows position.
            for number in try rows("SELECT number FROM activations WHERE app_id = ?", [.text(id)], { $0.text(0) }) {
                touched.activations.insert(number)
            }
        }
        touched.apps.insert(id)
        return app
    }

    public func deleteApp(_ id: String, acting: String?) throws(RegistryError) {
        try requireOperator(acting, "delete apps")
        _ = try app(id)
        let active = try count("SELECT count(*) FROM activations WHERE app_id = ? AND status = 'active'", [.text(id)])
        guard active == 0 else { throw .conflict("id", "app '\(id)' is active on \(active) number(s); deactivate it first") }
        for number in try rows("SELECT number FROM activations WHERE app_id = ?", [.text(id)], { $0.text(0) }) {
            touched.activations.insert(number)
        }
        try sql("DELETE FROM activations WHERE app_id = ?", [.text(id)])
        for user in try rows("SELECT user_id FROM grants WHERE service = ?", [.text(Service.app(id))], { $0.text(0) }) {
            touched.users.insert(user)
        }
        try sql("DELETE FROM grants WHERE service = ?", [.text(Service.app(id))])
        try sql("DELETE FROM apps WHERE id = ?", [.text(id)])
        touched.apps.insert(id)
    }
}
