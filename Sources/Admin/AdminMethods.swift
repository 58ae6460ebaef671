import JSON
import Registrar
import Registry
import SIP

/// Every method of the admin socket, in the order the documentation lists them.
public enum AdminMethods {
    public static let all: [AdminMethod] = system + accounts + users + numbers + providers + apps + activations + registry
        + availability + contacts + presence + routingMethods + calls + usage + settlement + rates + eventMethods

    static let system: [AdminMethod] = [
        AdminMethod(name: "system.version", summary: "Tandem's version, the store's schema version and uptime.", parameters: [],
                    result: "`{version, schema, started_at, uptime_seconds, snapshot_version}`", example: [:]) { _, call throws(RPCError) in
            let schema = try call.read { store throws(RegistryError) in store.schemaVersion }
            let now = call.clock()
            return ["version": .string(call.version), "schema": JSONValue(schema),
                    "started_at": .string(Timestamp.rfc3339(milliseconds: call.startedAt)),
                    "uptime_seconds": JSONValue(Int((now - call.startedAt) / 1000)),
                    "snapshot_version": .integer(Int64(call.registry.snapshot.version))]
        },
        AdminMethod(name: "system.methods", summary: "Every method with its parameters.", parameters: [],
                    result: "array of `{name, summary, params: [{name, type, required, summary}], result}`", example: [:]) { _, call in
            .array(call.methods.map { method in
                ["name": .string(method.name), "summary": .string(method.summary), "result": .string(method.result),
                 "params": .array(method.parameters.map {
                     ["name": .string($0.name), "type": .string($0.kind.rawValue), "required": .bool($0.required), "summary": .string($0.summary)]
                 })]
            })
        },
        AdminMethod(name: "system.auth", summary: "Authenticates a TCP admin connection with `admin.token`; the Unix socket needs no token.",
                    parameters: [.required("token", .string, "The bearer token configured as `admin.token`.")],
                    result: "`{authenticated: true}`", example: ["token": "s3cret-token"]) { a, call throws(RPCError) in
            guard call.session.authenticate(a.text("token")) else {
                throw RPCError(code: RPCError.unauthorizedCode, message: "Unauthorized", data: ["field": "token", "reason": "wrong token"])
            }
            return ["authenticated": true]
        },
        AdminMethod(name: "stats.get", summary: "Every counter of transport, parser, transactions, admin and registry, as one object.",
                    parameters: [], result: "nested object of counters, e.g. `{udp: {received: 10}, admin: {requests: 3}}`",
                    example: [:]) { _, call in
            var counters = call.statistics()
            counters += call.registry.snapshot.counts.map { ("registry.\($0.0)", $0.1) }
            return nest(counters)
        },
    ]

    /// `a.b.c = n` pairs into `{a: {b: {c: n}}}`.
    static func nest(_ counters: [(String, Int)]) -> JSONValue {
        var root: [String: JSONValue] = [:]
        func insert(_ path: ArraySlice<Substring>, _ value: Int, into object: inout [String: JSONValue]) {
            let key = String(path.first!)
            if path.count == 1 { object[key] = JSONValue(value); return }
            var child = object[key]?.objectValue ?? [:]
            insert(path.dropFirst(), value, into: &child)
            object[key] = .object(child)
        }
        for (name, value) in counters { insert(name.split(separator: ".")[...], value, into: &root) }
        return .object(root)
    }

    // MARK: Accounts

    static let accounts: [AdminMethod] = [
        AdminMethod(name: "account.create", summary: "Creates a billing account (operator only).",
                    parameters: [
                        .optional("id", .string, "Identifier; minted (`acc_…`) when absent."),
                        .required("name", .string, "Display name."),
                        .optional("status", .string, "`active` (default) or `suspended`."),
                        .optional("time_zone", .string, "IANA time zone for the account's rules (default `UTC`)."),
                        .optional("plan", .string, "Plan name for usage limits."),
                        .acting,
                    ], result: "the account", example: ["id": "smith", "name": "The Smiths", "time_zone": "Europe/Paris"]) { a, call throws(RPCError) in
            let status = try a.choice("status", as: Account.Status.self) ?? .active
            return try call.write { s throws(RegistryError) in
                try s.createAccount(id: a.string("id"), name: a.text("name"), status: status,
                                    timeZone: a.string("time_zone") ?? "UTC", plan: a.string("plan"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "account.get", summary: "One account.", parameters: [.required("id", .string, "Account id."), .acting],
                    result: "the account", example: ["id": "smith"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.account(a.text("id"), acting: a.acting) }.json
        },
        AdminMethod(name: "account.list", summary: "Accounts by id; a user acting sees only their own.",
                    parameters: [.optional("status", .string, "Only accounts in this status."), .limit, .offset, .acting],
                    result: "`{items, total, limit, offset}`", example: ["status": "suspended", "limit": 50]) { a, call throws(RPCError) in
            let status = try a.choice("status", as: Account.Status.self)
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in
                try s.accounts(status: status, limit: limit, offset: offset, acting: a.acting)
            }.json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "account.update",
                    summary: "Changes an account. Name and time zone: its primary user or the operator; status and plan: the operator. Suspending stops every user of the account at once; `account.status_changed` is recorded.",
                    parameters: [
                        .required("id", .string, "Account id."), .optional("name", .string, "New name."),
                        .optional("status", .string, "`active` or `suspended`."), .optional("time_zone", .string, "IANA time zone."),
                        .optional("plan", .string, "Plan name; empty string removes it."), .acting,
                    ], result: "the account", example: ["id": "smith", "status": "suspended"]) { a, call throws(RPCError) in
            let status = try a.choice("status", as: Account.Status.self)
            return try call.write { s throws(RegistryError) in
                try s.updateAccount(a.text("id"), name: a.string("name"), status: status, timeZone: a.string("time_zone"),
                                    plan: a.string("plan"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "account.delete", summary: "Deletes an account that has no users and no numbers left (operator only).",
                    parameters: [.required("id", .string, "Account id."), .acting],
                    result: "`{deleted: ID}`", example: ["id": "smith"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteAccount(a.text("id"), acting: a.acting) }
            return ["deleted": .string(a.text("id"))]
        },
    ]

    // MARK: Users

    static let users: [AdminMethod] = [
        AdminMethod(name: "user.create",
                    summary: "Creates a user in an account. The operator may create any role; the account's primary user may create members and children. One primary per account.",
                    parameters: [
                        .required("account", .string, "Account id."), .optional("id", .string, "Identifier; minted (`usr_…`) when absent."),
                        .required("display_name", .string, "Name shown to people."),
                        .optional("role", .string, "`primary`, `member` (default) or `child`."),
                        .required("sip_username", .string, "Username the user's devices register and authenticate with; unique."),
                        .optional("password", .string, "At least 8 characters; stored only as MD5 and SHA-256 digest HA1s."),
                        .optional("grants", .strings, "Services granted: `outbound`, `international`, `premium`, `app:ID`. Default: primary all three, member `outbound`, child none."),
                        .optional("status", .string, "`active` (default) or `disabled`."), .acting,
                    ], result: "the user (without credentials)",
                    example: ["account": "smith", "id": "alice", "display_name": "Alice Smith", "role": "primary",
                              "sip_username": "alice", "password": "correct horse"]) { a, call throws(RPCError) in
            let role = try a.choice("role", as: User.Role.self) ?? .member
            let status = try a.choice("status", as: User.Status.self) ?? .active
            return try call.write { s throws(RegistryError) in
                try s.createUser(accountID: a.text("account"), id: a.string("id"), displayName: a.text("display_name"), role: role,
                                 sipUsername: a.text("sip_username"), password: a.string("password"), grants: a.strings("grants"),
                                 status: status, acting: a.acting)
            }.json
        },
        AdminMethod(name: "user.get", summary: "One user.", parameters: [.required("id", .string, "User id."), .acting],
                    result: "the user", example: ["id": "alice"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.user(a.text("id"), acting: a.acting) }.json
        },
        AdminMethod(name: "user.list", summary: "Users by id; a user acting sees their own account's.",
                    parameters: [.optional("account", .string, "Only this account's users."), .optional("role", .string, "Only this role."),
                                 .limit, .offset, .acting],
                    result: "`{items, total, limit, offset}`", example: ["account": "smith"]) { a, call throws(RPCError) in
            let role = try a.choice("role", as: User.Role.self)
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in
                try s.users(accountID: a.string("account"), role: role, limit: limit, offset: offset, acting: a.acting)
            }.json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "user.update",
                    summary: "Changes a user (primary user of the account or operator). Making a user primary demotes the current primary to member. A new `sip_username` needs `password` too, since the stored hashes cover the username.",
                    parameters: [
                        .required("id", .string, "User id."), .optional("display_name", .string, "New name."),
                        .optional("role", .string, "`primary`, `member` or `child`."), .optional("status", .string, "`active` or `disabled`."),
                        .optional("sip_username", .string, "New SIP username."), .optional("password", .string, "New password."), .acting,
                    ], result: "the user", example: ["id": "tom", "role": "child", "acting_user": "alice"]) { a, call throws(RPCError) in
            let role = try a.choice("role", as: User.Role.self)
            let status = try a.choice("status", as: User.Status.self)
            return try call.write { s throws(RegistryError) in
                try s.updateUser(a.text("id"), displayName: a.string("display_name"), role: role, status: status,
                                 sipUsername: a.string("sip_username"), password: a.string("password"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "user.delete",
                    summary: "Deletes a user who owns no personal number; a primary user only when no other user remains.",
                    parameters: [.required("id", .string, "User id."), .acting],
                    result: "`{deleted: ID}`", example: ["id": "tom", "acting_user": "alice"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteUser(a.text("id"), acting: a.acting) }
            return ["deleted": .string(a.text("id"))]
        },
        AdminMethod(name: "user.set_password", summary: "Sets a password: the user themselves, their account's primary user, or the operator.",
                    parameters: [.required("id", .string, "User id."), .required("password", .string, "At least 8 characters."), .acting],
                    result: "the user", example: ["id": "tom", "password": "a longer secret", "acting_user": "tom"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.setPassword(a.text("id"), password: a.text("password"), acting: a.acting) }.json
        },
        AdminMethod(name: "user.grant", summary: "Grants services to a user (primary user of the account or operator).",
                    parameters: [.required("id", .string, "User id."),
                                 .required("services", .strings, "`outbound`, `international`, `premium`, or `app:ID` of an app active on one of the account's numbers."),
                                 .acting],
                    result: "the user", example: ["id": "tom", "services": ["outbound"], "acting_user": "alice"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.grant(a.text("id"), services: a.strings("services") ?? [], acting: a.acting) }.json
        },
        AdminMethod(name: "user.revoke", summary: "Revokes services from a user (primary user of the account or operator).",
                    parameters: [.required("id", .string, "User id."), .required("services", .strings, "Services to revoke."), .acting],
                    result: "the user", example: ["id": "tom", "services": ["international"], "acting_user": "alice"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.revoke(a.text("id"), services: a.strings("services") ?? [], acting: a.acting) }.json
        },
    ]

    // MARK: Numbers

    static let numbers: [AdminMethod] = [
        AdminMethod(name: "number.create", summary: "Assigns an E.164 number to an account (operator only).",
                    parameters: [
                        .required("number", .string, "E.164, e.g. `+33612345678`."), .required("account", .string, "Owning account."),
                        .optional("kind", .string, "`household` (default; rings the account's available members) or `personal`."),
                        .optional("owner", .string, "User id owning a personal number."),
                        .optional("provider", .string, "Primary provider: the carrier giving the number connectivity."),
                        .optional("ring_timeout", .integer, "Seconds its devices ring before voicemail or 480 (5–300, default 30)."),
                        .optional("fork", .string, "`parallel` (default: every device at once) or `serial` (by q-value, each for ring_timeout)."),
                        .optional("transfer", .string, "How a transfer mode sends calls on: `redirect` (302, default) or `proxy`."), .acting,
                    ], result: "the number",
                    example: ["number": "+33612345678", "account": "smith", "kind": "personal", "owner": "alice", "provider": "telco"]) { a, call throws(RPCError) in
            let kind = try a.choice("kind", as: TelephoneNumber.Kind.self) ?? .household
            var delivery = Delivery()
            if let timeout = try a.integer("ring_timeout") { delivery.ringTimeout = timeout }
            if let fork = try a.choice("fork", as: Delivery.Fork.self) { delivery.fork = fork }
            if let transfer = try a.choice("transfer", as: Delivery.Transfer.self) { delivery.transfer = transfer }
            return try call.write { s throws(RegistryError) in
                try s.createNumber(a.text("number"), accountID: a.text("account"), kind: kind, ownerUserID: a.string("owner"),
                                   providerID: a.string("provider"), delivery: delivery, acting: a.acting)
            }.json
        },
        AdminMethod(name: "number.get", summary: "One number.", parameters: [.required("number", .string, "E.164 number."), .acting],
                    result: "the number", example: ["number": "+33612345678"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.number(a.text("number"), acting: a.acting) }.json
        },
        AdminMethod(name: "number.list", summary: "Numbers in E.164 order; a user acting sees their own account's.",
                    parameters: [.optional("account", .string, "Only this account's."), .optional("owner", .string, "Only this user's personal numbers."),
                                 .optional("provider", .string, "Only this carrier's."), .optional("kind", .string, "`household` or `personal`."),
                                 .limit, .offset, .acting],
                    result: "`{items, total, limit, offset}`", example: ["account": "smith"]) { a, call throws(RPCError) in
            let kind = try a.choice("kind", as: TelephoneNumber.Kind.self)
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in
                try s.numbers(accountID: a.string("account"), ownerUserID: a.string("owner"), providerID: a.string("provider"),
                              kind: kind, limit: limit, offset: offset, acting: a.acting)
            }.json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "number.update", summary: "Makes a number household or personal (primary user of the account or operator).",
                    parameters: [.required("number", .string, "E.164 number."), .optional("kind", .string, "`household` or `personal`."),
                                 .optional("owner", .string, "Owner of a personal number."),
                                 .optional("ring_timeout", .integer, "Seconds its devices ring (5–300)."),
                                 .optional("fork", .string, "`parallel` or `serial`."),
                                 .optional("transfer", .string, "`redirect` or `proxy`."), .acting],
                    result: "the number", example: ["number": "+33612345678", "kind": "household"]) { a, call throws(RPCError) in
            let kind = try a.choice("kind", as: TelephoneNumber.Kind.self)
            let timeout = try a.integer("ring_timeout")
            let fork = try a.choice("fork", as: Delivery.Fork.self)
            let transfer = try a.choice("transfer", as: Delivery.Transfer.self)
            return try call.write { s throws(RegistryError) in
                try s.updateNumber(a.text("number"), kind: kind, ownerUserID: a.string("owner"), ringTimeout: timeout, fork: fork,
                                   transfer: transfer, acting: a.acting)
            }.json
        },
        AdminMethod(name: "number.delete", summary: "Deletes a number with no active app (operator only); its inactive activations and subscriber IDs go with it.",
                    parameters: [.required("number", .string, "E.164 number."), .acting],
                    result: "`{deleted: NUMBER}`", example: ["number": "+33612345678"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteNumber(a.text("number"), acting: a.acting) }
            return ["deleted": .string(a.text("number"))]
        },
        AdminMethod(name: "number.switch_provider",
                    summary: "Moves a number to another carrier (operator only). Every activation and subscriber ID is kept; routing info is regenerated; `number.provider_switched` is recorded.",
                    parameters: [.required("number", .string, "E.164 number."), .required("provider", .string, "The new carrier."), .acting],
                    result: "the number", example: ["number": "+33612345678", "provider": "othertelco"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.switchProvider(a.text("number"), to: a.text("provider"), acting: a.acting) }.json
        },
    ]

    // MARK: Providers

    static let providerParameters: [Parameter] = [
        .optional("kind", .string, "`carrier`, `app` (default) or `both`."),
        .optional("hops", .strings, "SIP URIs of the provider's hops, first preferred; required for app providers."),
        .optional("trusted_sources", .strings, "IP addresses or CIDR blocks the provider's requests come from."),
        .optional("id_scheme", .string, "How the provider knows subscribers: `tn` (default), `email`, `generated`, or `template:PATTERN` over `{number}`, `{digits}`, `{account}`, `{owner}`, `{random}`."),
        .optional("domain", .string, "Domain of minted IDs; required by `generated`."),
        .optional("webhook_url", .string, "http URL events are POSTed to (docs/events.md); empty removes it."),
        .optional("webhook_secret", .string, "HMAC-SHA256 key of the `X-Tandem-Signature` header, 16 to 256 characters; minted when a webhook URL is set without one, empty mints a new one."),
        .optional("currency", .string, "ISO 4217 code of the rates (default EUR)."),
        .optional("rate_per_minute", .integer, "Per-minute rate for use of its apps, integer minor units."),
        .optional("monthly_fee", .integer, "Monthly fee per activation, integer minor units."),
    ]

    static func providerFields(_ a: Arguments) throws(RPCError) -> ProviderFields {
        var fields = ProviderFields()
        fields.name = a.string("name")
        fields.kind = try a.choice("kind", as: Provider.Kind.self)
        fields.hops = a.strings("hops")
        fields.trustedSources = a.strings("trusted_sources")
        fields.idScheme = a.string("id_scheme")
        fields.domain = a.string("domain")
        fields.webhookURL = a.string("webhook_url")
        fields.webhookSecret = a.string("webhook_secret")
        fields.currency = a.string("currency")
        fields.ratePerMinute = try a.integer("rate_per_minute")
        fields.monthlyFee = try a.integer("monthly_fee")
        return fields
    }

    static let providers: [AdminMethod] = [
        AdminMethod(name: "provider.create", summary: "Adds a carrier or application provider (operator only).",
                    parameters: [.required("id", .string, "Identifier."), .required("name", .string, "Display name.")] + providerParameters + [.acting],
                    result: "the provider",
                    example: ["id": "vmcorp", "name": "VM Corp", "kind": "app", "hops": ["sip:vm.example.net:5060"],
                              "id_scheme": "generated", "domain": "vm.example.net", "rate_per_minute": 2, "monthly_fee": 150]) { a, call throws(RPCError) in
            let fields = try providerFields(a)
            return try call.write { s throws(RegistryError) in try s.createProvider(id: a.text("id"), fields: fields, acting: a.acting) }.json
        },
        AdminMethod(name: "provider.get", summary: "One provider.", parameters: [.required("id", .string, "Provider id.")],
                    result: "the provider", example: ["id": "vmcorp"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.provider(a.text("id")) }.json
        },
        AdminMethod(name: "provider.list", summary: "Providers by id.",
                    parameters: [.optional("kind", .string, "Only this kind."), .limit, .offset],
                    result: "`{items, total, limit, offset}`", example: ["kind": "carrier"]) { a, call throws(RPCError) in
            let kind = try a.choice("kind", as: Provider.Kind.self)
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in try s.providers(kind: kind, limit: limit, offset: offset) }
                .json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "provider.update",
                    summary: "Changes a provider (operator only). New hops regenerate the routing info of its activations; existing subscriber IDs never change.",
                    parameters: [.required("id", .string, "Provider id."), .optional("name", .string, "New name.")] + providerParameters + [.acting],
                    result: "the provider", example: ["id": "vmcorp", "hops": ["sip:vm2.example.net:5060"]]) { a, call throws(RPCError) in
            let fields = try providerFields(a)
            return try call.write { s throws(RegistryError) in try s.updateProvider(a.text("id"), fields: fields, acting: a.acting) }.json
        },
        AdminMethod(name: "provider.delete", summary: "Deletes a provider with no apps, numbers or subscribers (operator only).",
                    parameters: [.required("id", .string, "Provider id."), .acting],
                    result: "`{deleted: ID}`", example: ["id": "vmcorp"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteProvider(a.text("id"), acting: a.acting) }
            return ["deleted": .string(a.text("id"))]
        },
    ]

    // MARK: Apps

    static let appParameters: [Parameter] = [
        .optional("position", .integer, "Order in the inbound chain, 0 to 1000, lower first (default 100)."),
        .optional("on_failure", .string, "When the app fails during a call: `skip` it (default) or `fail` the call."),
        .optional("hop", .string, "SIP URI overriding the provider's first hop; empty removes it."),
    ]

    static func appFields(_ a: Arguments) throws(RPCError) -> AppFields {
        var fields = AppFields()
        fields.name = a.string("name")
        fields.kind = a.string("kind")
        fields.position = try a.integer("position")
        fields.onFailure = try a.choice("on_failure", as: App.OnFailure.self)
        fields.hop = a.string("hop")
        return fields
    }

    static let apps: [AdminMethod] = [
        AdminMethod(name: "app.create", summary: "Adds an app to a provider's catalog (operator only).",
                    parameters: [.required("id", .string, "Identifier."), .required("provider", .string, "The app provider."),
                                 .required("name", .string, "Display name."),
                                 .required("kind", .string, "One of \(App.kinds.joined(separator: ", "))."),
                    ] + appParameters + [.acting],
                    result: "the app", example: ["id": "voicemail", "provider": "vmcorp", "name": "Voicemail", "kind": "voicemail", "position": 900]) { a, call throws(RPCError) in
            let fields = try appFields(a)
            return try call.write { s throws(RegistryError) in
                try s.createApp(id: a.text("id"), providerID: a.text("provider"), fields: fields, acting: a.acting)
            }.json
        },
        AdminMethod(name: "app.get", summary: "One app.", parameters: [.required("id", .string, "App id.")],
                    result: "the app", example: ["id": "voicemail"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.app(a.text("id")) }.json
        },
        AdminMethod(name: "app.list", summary: "Apps in chain order.",
                    parameters: [.optional("provider", .string, "Only this provider's."), .optional("kind", .string, "Only this kind."), .limit, .offset],
                    result: "`{items, total, limit, offset}`", example: ["provider": "vmcorp"]) { a, call throws(RPCError) in
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in
                try s.apps(providerID: a.string("provider"), kind: a.string("kind"), limit: limit, offset: offset)
            }.json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "app.update", summary: "Changes an app (operator only); a new hop or position updates its activations.",
                    parameters: [.required("id", .string, "App id."), .optional("name", .string, "New name."), .optional("kind", .string, "New kind.")]
                        + appParameters + [.acting],
                    result: "the app", example: ["id": "voicemail", "on_failure": "fail"]) { a, call throws(RPCError) in
            let fields = try appFields(a)
            return try call.write { s throws(RegistryError) in try s.updateApp(a.text("id"), fields: fields, acting: a.acting) }.json
        },
        AdminMethod(name: "app.delete", summary: "Deletes an app active on no number (operator only).",
                    parameters: [.required("id", .string, "App id."), .acting],
                    result: "`{deleted: ID}`", example: ["id": "voicemail"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteApp(a.text("id"), acting: a.acting) }
            return ["deleted": .string(a.text("id"))]
        },
        AdminMethod(name: "app.activate",
                    summary: "Activates an app on a number (primary user of the account or operator). Mints the provider-specific subscriber ID on first use, stores the routing info, records `app.activated`.",
                    parameters: [.required("number", .string, "E.164 number."), .required("app", .string, "App id."),
                                 .optional("email", .string, "The subscriber's address, for providers with `id_scheme` `email`."), .acting],
                    result: "the activation", example: ["number": "+33612345678", "app": "voicemail"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in
                try s.activate(number: a.text("number"), appID: a.text("app"), email: a.string("email"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "app.deactivate",
                    summary: "Deactivates an app on a number; the subscriber ID is kept for a later reactivation. Records `app.deactivated`.",
                    parameters: [.required("number", .string, "E.164 number."), .required("app", .string, "App id."), .acting],
                    result: "the activation", example: ["number": "+33612345678", "app": "voicemail"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deactivate(number: a.text("number"), appID: a.text("app"), acting: a.acting) }.json
        },
    ]

    static let activations: [AdminMethod] = [
        AdminMethod(name: "activation.list", summary: "Activations by number and chain order; a user acting sees their own account's.",
                    parameters: [.optional("number", .string, "Only this number's."), .optional("app", .string, "Only this app's."),
                                 .optional("provider", .string, "Only this provider's."), .optional("status", .string, "`active` or `inactive`."),
                                 .limit, .offset, .acting],
                    result: "`{items, total, limit, offset}`", example: ["number": "+33612345678"]) { a, call throws(RPCError) in
            let status: Activation.Status? = try a.string("status").map { text throws(RPCError) in
                guard let status = Activation.Status(rawValue: text) else { throw RPCError.invalidParams("status", "'\(text)' is not one of active, inactive") }
                return status
            }
            let (limit, offset) = try a.paging()
            return try call.read { s throws(RegistryError) in
                try s.activations(number: a.string("number"), appID: a.string("app"), providerID: a.string("provider"), status: status,
                                  limit: limit, offset: offset, acting: a.acting)
            }.json(limit: limit, offset: offset, \.json)
        },
    ]

    // MARK: Import and events

    static let registry: [AdminMethod] = [
        AdminMethod(name: "registry.import",
                    summary: "Imports accounts, users and numbers from CSV (docs/admin-api.md#import-files), one transaction per chunk. Rows that fail are reported with line, field and reason; the others commit. With `progress`, a `registry.import.progress` notification follows each chunk.",
                    parameters: [
                        .optional("path", .string, "CSV file on the gateway's host (read by the gateway)."),
                        .optional("data", .string, "CSV text, for small imports; give `path` or `data`."),
                        .optional("chunk_size", .integer, "Rows per transaction, 1 to 100000 (default 1000)."),
                        .optional("skip_existing", .boolean, "Count rows that already exist as skipped instead of failed, so an interrupted import can be rerun."),
                        .optional("progress", .boolean, "Send progress notifications on this connection."),
                    ], result: "`{rows, imported, skipped, failed, chunks, errors: [{line, field, reason}]}` (the first 1000 errors)",
                    example: ["path": "/srv/import/accounts.csv", "skip_existing": true, "progress": true]) { a, call throws(RPCError) in
            let path = a.string("path"), data = a.string("data")
            guard (path == nil) != (data == nil) else { throw RPCError.invalidParams("path", "give either path or data") }
            let options = ImportOptions(chunkSize: try a.integer("chunk_size") ?? 1_000, skipExisting: a.bool("skip_existing") ?? false)
            let progress = a.bool("progress") ?? false
            do throws(RegistryError) {
                var reader = try path.map { p throws(RegistryError) in try CSVReader(path: p) } ?? CSVReader(text: data ?? "")
                return try call.registry.importCSV(&reader, options: options) { step in
                    guard progress else { return }
                    call.notify("registry.import.progress", ["rows": JSONValue(step.rows), "imported": JSONValue(step.imported),
                                                             "skipped": JSONValue(step.skipped), "failed": JSONValue(step.failed),
                                                             "chunks": JSONValue(step.chunks)])
                }.json
            } catch {
                throw RPCError(error)
            }
        },
        AdminMethod(name: "events.list", summary: "Events recorded by the registry, oldest first, after a cursor.",
                    parameters: [.optional("since", .integer, "Return events with an id above this (default 0)."),
                                 .optional("type", .string, "Only this type, e.g. `app.activated`."),
                                 .optional("limit", .integer, "Most events, 1 to 10000 (default 100).")],
                    result: "`{events: [{id, time, type, source, subject, payload}], next}`; pass `next` as `since` to continue",
                    example: ["since": 0, "type": "app.activated"]) { a, call throws(RPCError) in
            let since = try a.integer("since") ?? 0
            let limit = try a.integer("limit") ?? 100
            // Events the call path has handed to the call log are in the answer.
            call.flushWrites()
            let events = try call.read { s throws(RegistryError) in try s.events(since: since, type: a.string("type"), limit: limit) }
            return ["events": .array(events.map(\.json)), "next": JSONValue(events.last?.id ?? since)]
        },
        AdminMethod(name: "location.list", summary: "Registered devices (bindings), by address-of-record.",
                    parameters: [.optional("aor", .string, "Only this address-of-record (a SIP username or a personal number)."),
                                 .optional("user_id", .string, "Only this user's bindings."),
                                 .optional("account_id", .string, "Only the bindings of this account's users."),
                                 .acting, .limit, .offset],
                    result: "`{bindings: [{aor, contact, user_id, account_id, expires_in, expires_at, q, instance, reg_id, path, transport, source, call_id, cseq, user_agent, registered_at, updated_at}], total}`",
                    example: ["account_id": "smith"]) { a, call throws(RPCError) in
            let location = try call.requireLocation()
            let snapshot = call.registry.snapshot
            var accountID = a.string("account_id")
            if let actor = a.string("acting_user") {
                // A user sees their own account's devices only (the same rule as every other listing).
                guard let user = snapshot.user(actor) else { throw RPCError(.notFound("acting_user", "no user '\(actor)'")) }
                if let wanted = accountID, wanted != user.accountID {
                    throw RPCError(.forbidden("\(actor) may only list the devices of account \(user.accountID)"))
                }
                accountID = user.accountID
            }
            let limit = try a.integer("limit") ?? 100
            let offset = try a.integer("offset") ?? 0
            guard (1...10_000).contains(limit) else { throw RPCError.invalidParams("limit", "must be from 1 to 10000") }
            guard offset >= 0 else { throw RPCError.invalidParams("offset", "must not be negative") }
            var bindings: [Binding]
            if let aor = a.string("aor") { bindings = location.bindings(aor: aor) }
            else if let userID = a.string("user_id") { bindings = location.bindings(userID: userID) }
            else { bindings = location.all() }
            if let userID = a.string("user_id") { bindings = bindings.filter { $0.userID == userID } }
            if let accountID { bindings = bindings.filter { snapshot.user($0.userID)?.accountID == accountID } }
            let now = call.clock()
            bindings = bindings.filter { $0.expiresAt > now }
            let page = bindings.dropFirst(offset).prefix(limit)
            return ["bindings": .array(page.map { $0.json(now: now, accountID: snapshot.user($0.userID)?.accountID) }),
                    "total": JSONValue(bindings.count)]
        },
        AdminMethod(name: "location.remove", summary: "Removes a registered device, or every device of an address-of-record; recorded as `registration.changed`.",
                    parameters: [.required("aor", .string, "The address-of-record."),
                                 .optional("contact", .string, "The Contact URI to remove; absent: all of the address's bindings.")],
                    result: "`{removed: N}`",
                    example: ["aor": "alice", "contact": "sip:alice@192.0.2.10:5060"]) { a, call throws(RPCError) in
            let location = try call.requireLocation()
            let aor = a.string("aor")!
            let contact = a.string("contact")
            let removed = try call.update(location, aor: aor) { (current: [Binding]) throws(RPCError) in
                let gone = current.filter { contact == nil || $0.contact == contact }
                guard !gone.isEmpty else {
                    throw RPCError(.notFound(contact == nil ? "aor" : "contact",
                                             contact.map { "\(aor) has no binding \($0)" } ?? "\(aor) has no bindings"))
                }
                return (current.filter { contact != nil && $0.contact != contact }, gone.map { BindingChange(.removed, $0) }, gone.count)
            }
            return ["removed": JSONValue(removed)]
        },
        AdminMethod(name: "location.add",
                    summary: "Adds a device binding by hand (a static contact, as Kamailio's `ul.add`): the user's devices ring there until it expires; recorded as `registration.changed`.",
                    parameters: [.required("user", .string, "User id the binding belongs to."),
                                 .required("contact", .string, "The Contact SIP URI (an IP literal host)."),
                                 .optional("aor", .string, "Address-of-record; default the user's SIP username."),
                                 .optional("expires", .integer, "Seconds until it expires (default 3600, at most 31536000)."),
                                 .optional("q", .integer, "Preference in thousandths, 0–1000 (default 1000).")],
                    result: "`{aor, contact, expires}`",
                    example: ["user": "alice", "contact": "sip:alice@192.0.2.10:5060", "expires": 3600]) { a, call throws(RPCError) in
            let location = try call.requireLocation()
            let userID = a.text("user")
            guard let user = call.registry.snapshot.user(userID) else { throw RPCError(.notFound("user", "no user '\(userID)'")) }
            let contact = a.text("contact")
            guard let uri = SIPURI(parsing: contact), ["sip", "sips"].contains(uri.scheme.lowercased()) else {
                throw RPCError.invalidParams("contact", "'\(contact)' is not a SIP URI")
            }
            let expires = try a.integer("expires") ?? 3600
            guard (1...31_536_000).contains(expires) else { throw RPCError.invalidParams("expires", "must be 1 to 31536000 seconds") }
            let q = try a.integer("q") ?? 1000
            guard (0...1000).contains(q) else { throw RPCError.invalidParams("q", "must be 0 to 1000") }
            let aor = a.string("aor") ?? user.sipUsername
            let now = call.clock()
            let transport = uri.transport == "tcp" ? "tcp" : "udp"
            let binding = Binding(aor: aor, contact: contact, userID: userID, q: q, expiresAt: now + Int64(expires) * 1000,
                                  callID: "admin-\(now)", cseq: 1, transport: transport, source: "\(uri.host):\(uri.port ?? 5060)",
                                  local: "", registeredAt: now, updatedAt: now)
            try call.update(location, aor: aor) { (current: [Binding]) throws(RPCError) in
                let others = current.filter { $0.contact != contact }
                let replaced = others.count != current.count
                return (others + [binding], [BindingChange(replaced ? .replaced : .added, binding)], ())
            }
            return ["aor": .string(aor), "contact": .string(contact), "expires": JSONValue(expires)]
        },
        AdminMethod(name: "auth.bans", summary: "Source addresses refused for repeated failed authentications (`auth.max_failures`) or dropped for flooding (`security.flood_limit`).",
                    parameters: [],
                    result: "`{bans: [{source, since, until, failures, username, reason, kind}]}`: `kind` is `auth` (authentications refused 403) or `flood` (everything dropped); `failures` counts the failures or the messages",
                    example: [:]) { _, call throws(RPCError) in
            let failures = try call.requireAuthFailures()
            return ["bans": .array(failures.bans(now: call.clock()).map { ban in
                ["source": .string(ban.source), "since": .string(Timestamp.rfc3339(milliseconds: ban.since)),
                 "until": .string(Timestamp.rfc3339(milliseconds: ban.until)), "failures": JSONValue(ban.failures),
                 "username": ban.username.map { .string($0) } ?? .null, "reason": .string(ban.reason),
                 "kind": .string(ban.dropsAll ? "flood" : "auth")]
            })]
        },
        AdminMethod(name: "auth.unban", summary: "Lifts the ban on a source address and forgets its failed attempts.",
                    parameters: [.required("source", .string, "The banned IP address, as `auth.bans` shows it.")],
                    result: "`{unbanned: true}`",
                    example: ["source": "192.0.2.66"]) { a, call throws(RPCError) in
            let failures = try call.requireAuthFailures()
            let source = a.string("source")!
            guard failures.unban(source) else { throw RPCError(.notFound("source", "\(source) is not banned")) }
            return ["unbanned": true]
        },
    ]
}

extension Binding {
    func json(now: Int64, accountID: String?) -> JSONValue {
        ["aor": .string(aor), "contact": .string(contact), "user_id": .string(userID), "account_id": accountID.map { .string($0) } ?? .null,
         "expires_in": JSONValue(secondsLeft(now: now)), "expires_at": .string(Timestamp.rfc3339(milliseconds: expiresAt)),
         "q": .double(Double(q) / 1000), "instance": instance.map { .string($0) } ?? .null, "reg_id": regID.map { JSONValue($0) } ?? .null,
         "path": .array(path.map { .string($0) }), "transport": .string(transport), "source": .string(source),
         "call_id": .string(callID), "cseq": JSONValue(Int(cseq)), "user_agent": userAgent.map { .string($0) } ?? .null,
         "registered_at": .string(Timestamp.rfc3339(milliseconds: registeredAt)),
         "updated_at": .string(Timestamp.rfc3339(milliseconds: updatedAt))]
    }
}
