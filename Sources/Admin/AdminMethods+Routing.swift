import JSON
import Registry
import Routing

/// What the admin socket needs of the running gateway's routing: the dialplans in force, the
/// policy from the configuration, and a way to reload.
public struct RoutingAccess: Sendable {
    public var dialplans: @Sendable () -> DialplanSet
    public var policy: @Sendable () -> RoutingPolicy
    /// Reloads the dialplan folder: the plans now in force, or why the old ones stay.
    public var reload: @Sendable () -> Result<DialplanSet, DialplanReloadError>
    /// The presence subscriptions held, of one presentity or watcher (a user id) or all, as
    /// `presence.subscriptions` lists them.
    public var presenceSubscriptions: @Sendable (_ user: String?) -> [JSONValue]

    public init(dialplans: @escaping @Sendable () -> DialplanSet, policy: @escaping @Sendable () -> RoutingPolicy,
                reload: @escaping @Sendable () -> Result<DialplanSet, DialplanReloadError>,
                presenceSubscriptions: @escaping @Sendable (_ user: String?) -> [JSONValue] = { _ in [] }) {
        self.dialplans = dialplans
        self.policy = policy
        self.reload = reload
        self.presenceSubscriptions = presenceSubscriptions
    }
}

extension Availability {
    var json: JSONValue {
        var object = AvailabilityDefinition.json(self).objectValue ?? [:]
        object["user"] = .string(userID)
        object["active_profile"] = .string(activeProfile)
        object["override"] = override.map { ["mode": .string($0.mode), "until": $0.until.map { .string(Timestamp.rfc3339(milliseconds: $0)) } ?? .null] } ?? .null
        object["updated_at"] = updatedAt.isEmpty ? .null : .string(updatedAt)
        return .object(object)
    }
}

extension ContactList {
    var json: JSONValue {
        ["name": .string(name), "entries": ContactListEntries.json(entries), "updated_at": .string(updatedAt)]
    }
}

extension Outcome {
    var json: JSONValue {
        switch self {
        case .accept(let delivering):
            return ["kind": .string(kind), "number": JSONValue(delivering.number), "users": JSONValue(delivering.users),
                    "fork": .string(delivering.fork.rawValue), "ring_timeout": JSONValue(delivering.ringTimeout),
                    "voicemail": delivering.voicemail.map(\.json) ?? .null]
        case .redirect(let target):
            return ["kind": "transfer", "style": "redirect", "target": .string(target), "status": 302]
        case .transfer(let target, let then):
            return ["kind": "transfer", "style": "proxy", "target": .string(target), "then": then.json]
        case .reject(let status, let reason):
            return ["kind": "reject", "status": JSONValue(status), "reason": .string(reason)]
        case .chain(let hops, let then):
            return ["kind": "chain", "hops": .array(hops.map(\.json)), "then": then.json]
        case .outbound(let number, let exit):
            switch exit {
            case .trunk(let id, let hops): return ["kind": "outbound", "number": .string(number), "trunk": .string(id), "hops": JSONValue(hops)]
            case .defaultRoute: return ["kind": "outbound", "number": .string(number), "route": "default_route"]
            }
        }
    }
}

extension AppHop {
    var json: JSONValue {
        ["app": .string(appID), "kind": .string(kind), "provider": .string(providerID), "subscriber_id": .string(subscriberID),
         "uri": .string(uri), "on_failure": .string(onFailure.rawValue), "step": JSONValue(step)]
    }
}

extension AdminMethods {
    /// A time parameter as milliseconds since the epoch, nil when absent.
    static func time(_ a: Arguments, _ name: String) throws(RPCError) -> Int64? {
        guard let text = a.string(name) else { return nil }
        guard let value = Timestamp.milliseconds(rfc3339: text) else {
            throw RPCError.invalidParams(name, "'\(text)' is not an RFC 3339 time (2026-11-23T09:00:00Z)")
        }
        return value
    }

    /// `at`, or now.
    static func moment(_ a: Arguments, _ call: Invocation) throws(RPCError) -> Int64 {
        try time(a, "at") ?? call.clock()
    }

    static let availability: [AdminMethod] = [
        AdminMethod(name: "availability.get", summary: "A user's availability: modes, profiles and their rules (weekly and calendar), override, caller lists.",
                    parameters: [.required("user", .string, "User id."), .acting],
                    result: "`{user, modes, profiles, active_profile, override, urgent, blocked, sharing, authorised, updated_at}`",
                    example: ["user": "alice"]) { a, call throws(RPCError) in
            try call.read { s throws(RegistryError) in try s.availability(userID: a.text("user"), acting: a.acting) }.json
        },
        AdminMethod(name: "availability.define",
                    summary: "Replaces a user's whole availability definition (the user, their primary, or the operator); records `availability.changed`.",
                    parameters: [.required("user", .string, "User id."),
                                 .required("definition", .object, "`{modes: [{name, state, target?, notify?, allow?, deny?}], profiles: [{name, default_mode?, rules: [{days?, from?, to?, dates?, monthdays?, month_weeks?, yearly?, mode}]}], urgent?, blocked?, sharing?, authorised?, refused?}` — docs/routing.md."),
                                 .optional("active_profile", .string, "The profile in force; default: the current one, else the first."), .acting],
                    result: "the availability",
                    example: ["user": "alice", "definition": [
                        "modes": [["name": "meeting", "state": "not_available", "deny": ["+33699999999"]]],
                        "profiles": [["name": "work", "default_mode": "available",
                                      "rules": [["days": ["mon-fri"], "from": "10:00", "to": "11:00", "mode": "meeting"]]]],
                    ]]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in
                try s.defineAvailability(userID: a.text("user"), definition: a.object("definition") ?? .null,
                                         activeProfile: a.string("active_profile"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "availability.set",
                    summary: "Sets or clears the override mode (optionally until a time) and/or switches the active profile; records `availability.changed`.",
                    parameters: [.required("user", .string, "User id."),
                                 .optional("mode", .string, "Mode to force; `null` clears the override."),
                                 .optional("until", .string, "RFC 3339 time the override ends; absent: until cleared."),
                                 .optional("profile", .string, "Profile to make active."), .acting],
                    result: "the availability", example: ["user": "alice", "mode": "meeting", "until": "2026-11-23T11:00:00Z"]) { a, call throws(RPCError) in
            let mode: String?? = a.isPresent("mode") ? .some(a.string("mode")) : .none
            let until = try time(a, "until")
            guard mode != nil || a.string("profile") != nil else {
                throw RPCError.invalidParams("mode", "give a mode (or null to clear it), a profile, or both")
            }
            return try call.write { s throws(RegistryError) in
                try s.setAvailability(userID: a.text("user"), mode: mode, until: until, profile: a.string("profile"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "availability.state",
                    summary: "A user's connectability as an asker may see it: connectable, not_connectable, subject_to_authorisation, in_transfer or unknown.",
                    parameters: [.required("user", .string, "User id."),
                                 .optional("asker", .string, "Who asks: an E.164 number or a user id; absent: the operator, who sees everything."),
                                 .optional("at", .string, "RFC 3339 time to evaluate at; default now.")],
                    result: "`{user, state, reasons}`", example: ["user": "alice", "asker": "+33699999999"]) { a, call throws(RPCError) in
            let now = try moment(a, call)
            let snapshot = call.registry.snapshot
            let userID = a.text("user")
            guard let user = snapshot.user(userID) else { throw RPCError(.notFound("user", "no user '\(userID)'")) }
            let availability = snapshot.availability(of: userID)?.value ?? .standard(userID: userID)
            let asker = a.string("asker").map { $0.hasPrefix("+") ? CallerIdentity(number: $0) : CallerIdentity(userID: $0) }
            let registered = call.location?.bindings(userID: userID).contains { $0.expiresAt > now } ?? false
            let zone = snapshot.account(user.accountID)?.timeZone ?? "UTC"
            let (state, reasons) = availability.connectability(for: asker, registered: registered, now: now, local: LocalTime.at(now, zone: zone))
            // An unauthorised asker learns the state and nothing of why.
            let shown = state == .subjectToAuthorisation ? [] : reasons
            return ["user": .string(userID), "state": .string(state.rawValue), "reasons": JSONValue(shown)]
        },
    ]

    static let contacts: [AdminMethod] = [
        AdminMethod(name: "contacts.get", summary: "A user's contact lists, or one of them.",
                    parameters: [.required("user", .string, "User id."), .optional("list", .string, "One list's name; absent: every list."), .acting],
                    result: "`{user, lists: [{name, entries: [{number | user | uri | list, name?}], updated_at}]}`",
                    example: ["user": "alice"]) { a, call throws(RPCError) in
            let userID = a.text("user"), only = a.string("list")
            let lists = try call.read { s throws(RegistryError) in try s.contactLists(userID: userID, acting: a.acting) }
            if let only, !lists.contains(where: { $0.name == only }) {
                throw RPCError(.notFound("list", "user '\(userID)' has no list '\(only)'"))
            }
            return ["user": .string(userID), "lists": .array(lists.filter { only == nil || $0.name == only }.map(\.json))]
        },
        AdminMethod(name: "contacts.define",
                    summary: "Creates or replaces one of a user's contact lists (the user, their primary, or the operator); availability entries name it as `list:NAME`; records `contacts.changed`.",
                    parameters: [.required("user", .string, "User id."), .required("list", .string, "The list's name (an identifier)."),
                                 .required("entries", .objects, "Up to 500 of `{number: E.164}`, `{user: id}`, `{uri: sip URI}`, `{list: other list}`, each with an optional `name`."),
                                 .acting],
                    result: "the list `{name, entries, updated_at}`",
                    example: ["user": "alice", "list": "family",
                              "entries": [["user": "bob", "name": "Bob"], ["number": "+33612345678", "name": "Mum"]]]) { a, call throws(RPCError) in
            let entries = a.isPresent("entries") ? (a.object("entries") ?? .array([])) : .array([])
            return try call.write { s throws(RegistryError) in
                try s.defineContactList(userID: a.text("user"), name: a.text("list"), entries: entries, acting: a.acting)
            }.json
        },
        AdminMethod(name: "contacts.delete",
                    summary: "Deletes a contact list no availability entry and no other list names; records `contacts.changed`.",
                    parameters: [.required("user", .string, "User id."), .required("list", .string, "The list's name."), .acting],
                    result: "`{deleted: true}`", example: ["user": "alice", "list": "family"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in try s.deleteContactList(userID: a.text("user"), name: a.text("list"), acting: a.acting) }
            return ["deleted": true]
        },
    ]

    static let presence: [AdminMethod] = [
        AdminMethod(name: "presence.subscriptions",
                    summary: "Presence subscriptions held (docs/presence.md): who watches whom, until when, and what the watcher was last shown — `pending` for a watcher the user has not authorised.",
                    parameters: [.optional("user", .string, "A user id: the subscriptions watching that user or held by them; absent: all.")],
                    result: "`{subscriptions: [{id, presentity, watcher, expires_at, shown, waiting}]}` sorted by id",
                    example: ["user": "alice"]) { a, call throws(RPCError) in
            let routing = try call.requireRouting()
            return ["subscriptions": .array(routing.presenceSubscriptions(a.string("user")))]
        },
        AdminMethod(name: "presence.authorise",
                    summary: "A user's answer to a watcher: `allow` shows them the user's state (adds them to `authorised`), `refuse` ends their subscriptions with `rejected` and refuses new ones, `forget` undoes either (the user, their primary, or the operator); records `availability.changed` and notifies the watcher's subscriptions at once.",
                    parameters: [.required("user", .string, "The watched user's id."), .required("watcher", .string, "The watcher: a user id or an E.164 number."),
                                 .required("decision", .string, "`allow`, `refuse` or `forget`."), .acting],
                    result: "the availability", example: ["user": "alice", "watcher": "bob", "decision": "allow"]) { a, call throws(RPCError) in
            try call.write { s throws(RegistryError) in
                try s.authoriseWatcher(userID: a.text("user"), watcher: a.text("watcher"), decision: a.text("decision"), acting: a.acting)
            }.json
        },
        AdminMethod(name: "messages.set",
                    summary: "A voicemail application reports a user's messages waiting (the operator, the user or their primary): the user's phones subscribed to `message-summary` are notified (RFC 3842; unsolicited to registered phones with `presence.unsolicited_mwi`); records `messages.changed` when a count changed.",
                    parameters: [.required("user", .string, "User id."), .required("new", .integer, "New (unheard) messages."),
                                 .optional("old", .integer, "Old (heard) messages kept; default 0."),
                                 .optional("urgent_new", .integer, "Of the new ones, urgent; default 0."),
                                 .optional("urgent_old", .integer, "Of the old ones, urgent; default 0."),
                                 .optional("account", .string, "The mailbox's SIP URI a phone calls to listen (`Message-Account`)."), .acting],
                    result: "`{user, new, old, urgent_new, urgent_old, account}`",
                    example: ["user": "alice", "new": 2, "old": 5, "account": "sip:voicemail@tandem.example"]) { a, call throws(RPCError) in
            guard let new = try a.integer("new") else { throw RPCError.invalidParams("new", "is required") }
            let summary = MessageSummary(newMessages: new, oldMessages: try a.integer("old") ?? 0, urgentNew: try a.integer("urgent_new") ?? 0,
                                         urgentOld: try a.integer("urgent_old") ?? 0, account: a.string("account"))
            let user = a.text("user")
            return try call.write { s throws(RegistryError) in try s.setMessageSummary(userID: user, summary, acting: a.acting) }.json(user: user)
        },
        AdminMethod(name: "messages.get",
                    summary: "A user's messages waiting, as last reported (zeros when never).",
                    parameters: [.required("user", .string, "User id."), .acting],
                    result: "`{user, new, old, urgent_new, urgent_old, account}`", example: ["user": "alice"]) { a, call throws(RPCError) in
            let user = a.text("user")
            return try call.read { s throws(RegistryError) in try s.messageSummary(userID: user, acting: a.acting) }.json(user: user)
        },
    ]

    static let routingMethods: [AdminMethod] = [
        AdminMethod(name: "route.explain",
                    summary: "The routing decision for a call, with every step and reason, without placing it.",
                    parameters: [.required("to", .string, "The number or user dialled (Request-URI user part)."),
                                 .optional("from", .string, "The caller's E.164 number."),
                                 .optional("source", .string, "`user` (with `user`), `provider` (with `provider`), `peer` (default), or `chain` (with `provider` and `step`)."),
                                 .optional("user", .string, "The calling user, for source=user."),
                                 .optional("provider", .string, "The provider, for source=provider or chain."),
                                 .optional("step", .integer, "The chain step an app hands back after, for source=chain."),
                                 .optional("priority", .string, "The Priority header (`urgent`, `emergency`)."),
                                 .optional("at", .string, "RFC 3339 time; default now.")],
                    result: "`{outcome, normalized, class, steps: [{stage, detail}]}`",
                    example: ["to": "0612345678", "source": "user", "user": "alice"]) { a, call throws(RPCError) in
            let routing = try call.requireRouting()
            let origin: Origin
            switch a.string("source") ?? "peer" {
            case "user":
                guard let user = a.string("user") else { throw RPCError.invalidParams("user", "required with source=user") }
                origin = .user(user)
            case "provider":
                guard let provider = a.string("provider") else { throw RPCError.invalidParams("provider", "required with source=provider") }
                origin = .provider(provider)
            case "chain":
                guard let provider = a.string("provider") else { throw RPCError.invalidParams("provider", "required with source=chain") }
                guard let step = try a.integer("step") else { throw RPCError.invalidParams("step", "required with source=chain") }
                origin = .chainReturn(provider: provider, step: step)
            case "peer":
                origin = .peer
            case let other:
                throw RPCError.invalidParams("source", "'\(other)' is not user, provider, peer or chain")
            }
            let now = try moment(a, call)
            let facts = CallFacts(origin: origin, callerNumber: a.string("from"), dialled: a.text("to"), priority: a.string("priority")?.lowercased())
            let directory = RegistryDirectory(snapshot: call.registry.snapshot, location: call.location, now: now)
            let decision = Router.decide(facts, dialplans: routing.dialplans(), directory: directory, policy: routing.policy(), now: now)
            return ["outcome": decision.outcome.json, "normalized": .string(decision.normalized),
                    "class": JSONValue(decision.numberClass?.rawValue),
                    "steps": .array(decision.steps.map { ["stage": .string($0.stage), "detail": .string($0.detail)] })]
        },
        AdminMethod(name: "dialplan.translate", summary: "What a dialplan makes of a number, and which rule matched.",
                    parameters: [.required("number", .string, "The number as dialled."),
                                 .optional("dialplan", .string, "Dialplan name; default `routing.user_dialplan`.")],
                    result: "`{dialplan, input, output, rule: {file, line, priority, match, pattern, replacement}|null, class, route, deny}`",
                    example: ["number": "0612345678", "dialplan": "users"]) { a, call throws(RPCError) in
            let routing = try call.requireRouting()
            let plans = routing.dialplans()
            guard let name = a.string("dialplan") ?? routing.policy().userDialplan else {
                throw RPCError.invalidParams("dialplan", "required: routing.user_dialplan is empty")
            }
            guard let plan = plans[name] else {
                throw RPCError(.notFound("dialplan", "no dialplan '\(name)' (loaded: \(plans.names.joined(separator: ", ")))"))
            }
            let translation = plan.translate(a.text("number"))
            let rule: JSONValue = translation.rule.map { rule in
                ["file": .string(rule.file), "line": JSONValue(rule.line), "priority": JSONValue(rule.priority), "match": .string(rule.matchKind),
                 "pattern": .string(rule.pattern), "replacement": JSONValue(rule.replacement)]
            } ?? .null
            return ["dialplan": .string(name), "input": .string(translation.input), "output": .string(translation.output), "rule": rule,
                    "class": JSONValue(translation.numberClass?.rawValue), "route": JSONValue(translation.trunk.map { "trunk:\($0)" }),
                    "deny": JSONValue(translation.deny)]
        },
        AdminMethod(name: "dialplan.reload",
                    summary: "Re-reads `routing.dialplans`; on any error the plans in force stay and every problem is listed with file and line. At most one reload a second.",
                    parameters: [], result: "`{dialplans: [{name, rules}]}`", example: [:]) { _, call throws(RPCError) in
            let routing = try call.requireRouting()
            switch routing.reload() {
            case .success(let plans):
                return ["dialplans": .array(plans.names.map { ["name": .string($0), "rules": JSONValue(plans[$0]!.rules.count)] })]
            case .failure(.tooSoon(let wait)):
                throw RPCError(code: RPCError.busyCode, message: "Busy",
                               data: ["reason": .string(DialplanReloadError.tooSoon(retryAfter: wait).description), "retry_after_ms": .integer(wait)])
            case .failure(.invalid(let problems)):
                throw RPCError(code: RPCError.invalidParamsCode, message: "Invalid params", data: [
                    "field": "dialplans", "reason": "the dialplans in force stay; fix these and reload",
                    "errors": .array(problems.errors.map { ["file": .string($0.file), "line": JSONValue($0.line), "reason": .string($0.reason)] }),
                ])
            }
        },
    ]
}
