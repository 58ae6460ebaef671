import Events
import JSON
import Registry

extension AdminMethods {
    static let typesParameter = Parameter.optional("types", .strings,
        "Event types: `call.ended`, a family `call.*`, or `*`; absent or empty means every type.")

    static func patterns(_ a: Arguments) throws(RPCError) -> [EventPattern] {
        do { return try EventPattern.list(a.strings("types")) } catch { throw RPCError(error) }
    }

    static func serviceError(_ error: EventDispatcher.ServiceError) -> RPCError {
        switch error {
        case .nameTaken(let name):
            RPCError(code: RPCError.conflictCode, message: "Conflict", data: ["field": "name", "reason": .string("service '\(name)' is registered on another connection")])
        case .notRegistered(let name):
            RPCError(code: RPCError.notFoundCode, message: "Not found", data: ["field": "service", "reason": .string("no service '\(name)' is registered on this connection")])
        case .builtIn(let type):
            RPCError(code: RPCError.forbiddenCode, message: "Forbidden", data: ["field": "type", "reason": .string("\(type) is emitted by Tandem only")])
        case .notProvided(let type):
            RPCError(code: RPCError.forbiddenCode, message: "Forbidden", data: ["field": "type", "reason": .string("the service did not register \(type) in events_provided")])
        case .registry(let error):
            RPCError(error)
        }
    }

    static let eventMethods: [AdminMethod] = [
        AdminMethod(name: "events.pull", summary: "Events after a cursor, oldest first: what a subscriber missed, or the whole feed for a service that polls.",
                    parameters: [.optional("since", .integer, "The cursor: events with an id above it (default 0). Pass back the `cursor` of the answer."),
                                 typesParameter,
                                 .optional("limit", .integer, "Most events, 1 to 10000 (default 1000).")],
                    result: "`{events: [{id, time, type, source, subject, payload}], cursor, more}`; `cursor` is past every event looked at, matching or not",
                    example: ["since": 1041, "types": ["call.*", "gauge.updated"]]) { a, call throws(RPCError) in
            let since = try a.integer("since") ?? 0
            let limit = try a.integer("limit") ?? 1_000
            let patterns = try patterns(a)
            // Events the call path has handed to the call log are in the answer.
            call.flushWrites()
            let (events, cursor, head) = try call.read { s throws(RegistryError) in
                let page = try s.events(after: since, matching: patterns, limit: limit)
                return (page.events, page.through, try s.eventHead())
            }
            return ["events": .array(events.map(\.json)), "cursor": JSONValue(cursor), "more": .bool(cursor < head)]
        },
        AdminMethod(name: "events.get", summary: "One event of the log with its recipients: each provider webhook owed it and each named subscriber of its type, with a delivered flag.",
                    parameters: [.required("id", .integer, "The event id.")],
                    result: "`{event: {id, time, type, source, subject, payload}, recipients: [{recipient, delivered, status?, attempts?, last_error?}]}`",
                    example: ["id": 1042]) { a, call throws(RPCError) in
            let id = try a.integer("id") ?? 0
            call.flushWrites()
            let (event, deliveries, subscribers) = try call.read { s throws(RegistryError) in
                (try s.event(id), try s.deliveries(recipient: nil, eventID: id, status: nil, limit: 10_000, offset: 0).items, try s.subscribers())
            }
            var recipients: [JSONValue] = deliveries.map { delivery in
                ["recipient": .string(delivery.recipient), "delivered": .bool(delivery.status == .delivered), "status": .string(delivery.status.rawValue),
                 "attempts": JSONValue(delivery.attempts), "last_error": JSONValue(delivery.lastError)]
            }
            // A named subscriber has had every event of its types up to its cursor.
            for subscriber in subscribers {
                let patterns = subscriber.types.compactMap { try? EventPattern($0) }
                guard patterns.contains(where: { $0.matches(event.type) }) else { continue }
                recipients.append(["recipient": .string("subscriber:\(subscriber.name)"), "delivered": .bool(subscriber.cursor >= event.id)])
            }
            return ["event": event.json, "recipients": .array(recipients)]
        },
        AdminMethod(name: "events.subscribe", summary: "Streams events to this connection as `events.event` notifications, first those after the cursor, then each as it is recorded.",
                    parameters: [typesParameter,
                                 .optional("name", .string, "A durable subscriber name: its cursor is kept, and subscribing again under it resumes where it left off."),
                                 .optional("since", .integer, "Start after this event id (default: where the named subscriber left off, else now).")],
                    result: "`{subscription, cursor, unavailable}`: notifications carry `subscription`; `unavailable` lists asked-for types no service emits now",
                    example: ["types": ["call.*", "registration.changed"], "name": "crm"]) { a, call throws(RPCError) in
            let events = try call.requireEvents()
            let patterns = try patterns(a)
            let session = call.session
            let since = try a.integer("since")
            let subscription: (id: Int, cursor: Int)
            do throws(EventDispatcher.SubscribeError) {
                subscription = try events.subscribe(connection: session.connection, name: a.string("name"), patterns: patterns,
                                                    since: since) { method, params in session.notify(method, params) }
            } catch {
                switch error {
                case .registry(let error): throw RPCError(error)
                case .nameInUse(let name):
                    throw RPCError(code: RPCError.conflictCode, message: "Conflict", data: ["field": "name", "reason": .string("subscriber '\(name)' is connected on another connection")])
                }
            }
            session.onClose { events.connectionClosed(session.connection) }
            let emitters = events.services().emitters
            let unavailable = patterns.map(\.text).filter { !$0.contains("*") && (emitters[$0] ?? []).isEmpty }
            return ["subscription": JSONValue(subscription.id), "cursor": JSONValue(subscription.cursor), "unavailable": JSONValue(unavailable)]
        },
        AdminMethod(name: "events.unsubscribe", summary: "Ends a subscription of this connection; what is already queued is still sent.",
                    parameters: [.required("subscription", .integer, "The id `events.subscribe` answered.")],
                    result: "`{subscription, cursor}`: pull after `cursor` for what follows",
                    example: ["subscription": 1]) { a, call throws(RPCError) in
            let id = try a.integer("subscription") ?? 0
            guard let cursor = try call.requireEvents().unsubscribe(connection: call.session.connection, id: id) else {
                throw RPCError(code: RPCError.notFoundCode, message: "Not found", data: ["field": "subscription", "reason": .string("this connection has no subscription \(id)")])
            }
            return ["subscription": JSONValue(id), "cursor": JSONValue(cursor)]
        },
        AdminMethod(name: "events.subscriptions", summary: "Push subscriptions now connected, and the durable subscriber names with their cursors.",
                    parameters: [],
                    result: "`{live: [{id, connection, name, types, cursor, queued, catching_up}], named: [{name, types, cursor, updated_at}]}`",
                    example: [:]) { _, call throws(RPCError) in
            let live = try call.requireEvents().subscriptions()
            let named = try call.read { s throws(RegistryError) in try s.subscribers() }
            return ["live": .array(live), "named": .array(named.map(\.json))]
        },
        AdminMethod(name: "events.forget", summary: "Deletes a durable subscriber name and its cursor.",
                    parameters: [.required("name", .string, "The subscriber name.")],
                    result: "`{deleted: name}`", example: ["name": "crm"]) { a, call throws(RPCError) in
            let name = a.text("name")
            try call.write { s throws(RegistryError) in try s.deleteSubscriber(name) }
            return ["deleted": .string(name)]
        },
        AdminMethod(name: "events.deliveries", summary: "Webhook deliveries: per event and provider, its status, attempts and last error.",
                    parameters: [.optional("provider", .string, "Only this provider's."),
                                 .optional("event_id", .integer, "Only this event's recipients."),
                                 .optional("status", .string, "`pending`, `delivered` or `failed`."), .limit, .offset],
                    result: "`{items: [{recipient, event_id, status, attempts, next_attempt, last_status, last_error, delivered_at}], total, limit, offset}`",
                    example: ["provider": "vmcorp", "status": "failed"]) { a, call throws(RPCError) in
            let (limit, offset) = try a.paging()
            let status = try a.choice("status", as: EventDelivery.Status.self)
            let eventID = try a.integer("event_id")
            let page = try call.read { s throws(RegistryError) in
                try s.deliveries(recipient: a.string("provider").map { "provider:\($0)" }, eventID: eventID, status: status, limit: limit, offset: offset)
            }
            return page.json(limit: limit, offset: offset, \.json)
        },
        AdminMethod(name: "events.redeliver", summary: "Queues a provider's failed webhook deliveries again, in order, to be tried now.",
                    parameters: [.required("provider", .string, "Provider id.")],
                    result: "`{provider, requeued}`", example: ["provider": "vmcorp"]) { a, call throws(RPCError) in
            let provider = a.text("provider")
            let requeued = try call.write { s throws(RegistryError) in
                _ = try s.provider(provider)
                return try s.retryFailedDeliveries(recipient: "provider:\(provider)")
            }
            call.events?.wakeWebhook(provider: provider)
            return ["provider": .string(provider), "requeued": JSONValue(requeued)]
        },
        AdminMethod(name: "events.emit", summary: "Records an event a service registered on this connection provides; it is delivered like Tandem's own.",
                    parameters: [.required("service", .string, "The emitting service (registered on this connection)."),
                                 .required("type", .string, "An event type in the service's `events_provided`."),
                                 .optional("subject", .string, "What the event is about (a number, a user)."),
                                 .optional("payload", .object, "The event's content (default `{}`).")],
                    result: "`{id}`: the event's id in the log",
                    example: ["service": "transcriber", "type": "transcript.ready", "subject": "+33140000000", "payload": ["cdr_id": 7]]) { a, call throws(RPCError) in
            let type = a.text("type")
            do throws(RegistryError) { _ = try EventPattern(type, field: "type") } catch { throw RPCError(error) }
            guard !type.contains("*") else { throw RPCError.invalidParams("type", "an emitted event has one type, not a family") }
            let events = try call.requireEvents()
            do throws(EventDispatcher.ServiceError) {
                let id = try events.emit(type, subject: a.string("subject"), payload: a.object("payload") ?? [:],
                                         service: a.text("service"), connection: call.session.connection)
                return ["id": JSONValue(id)]
            } catch {
                throw serviceError(error)
            }
        },
        AdminMethod(name: "service.register", summary: "Registers this connection as a service: the events and actions it provides and consumes. It stays registered while the connection is open.",
                    parameters: [.required("name", .string, "Service name, unique among connected services."),
                                 .optional("events_provided", .strings, "Event types it emits (`events.emit`)."),
                                 .optional("events_consumed", .strings, "Event types it listens for; told by `events.unavailable` / `events.available` when their last emitter leaves or one returns."),
                                 .optional("actions_provided", .strings, "Actions it performs for others (documentation for `service.list`)."),
                                 .optional("actions_consumed", .strings, "Actions it uses.")],
                    result: "`{service, unavailable}`: consumed types no one emits now",
                    example: ["name": "transcriber", "events_provided": ["transcript.ready"], "events_consumed": ["call.ended"],
                              "actions_provided": ["transcribe"]]) { a, call throws(RPCError) in
            let events = try call.requireEvents()
            let name: String
            let provided: [String]
            let consumed: [EventPattern]
            do throws(RegistryError) {
                name = a.text("name")
                guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || [45, 46, 95].contains($0) }) else {
                    throw .invalid("name", "'\(name)' is not a service name (1 to 64 of a-z, 0-9, '.', '-', '_')")
                }
                provided = try (a.strings("events_provided") ?? []).map { type throws(RegistryError) in
                    let pattern = try EventPattern(type, field: "events_provided")
                    guard !type.contains("*") else { throw .invalid("events_provided", "'\(type)': a provided event is one type, not a family") }
                    return pattern.text
                }
                consumed = try (a.strings("events_consumed") ?? []).map { type throws(RegistryError) in try EventPattern(type, field: "events_consumed") }
            } catch {
                throw RPCError(error)
            }
            let session = call.session
            let service = ServiceRegistration(name: name, connection: session.connection, eventsProvided: provided, eventsConsumed: consumed,
                                              actionsProvided: a.strings("actions_provided") ?? [], actionsConsumed: a.strings("actions_consumed") ?? [],
                                              registeredAt: Timestamp.rfc3339(milliseconds: call.clock()))
            let unavailable: [String]
            do throws(EventDispatcher.ServiceError) {
                unavailable = try events.register(service) { method, params in session.notify(method, params) }
            } catch {
                throw serviceError(error)
            }
            session.onClose { events.connectionClosed(session.connection) }
            return ["service": service.json, "unavailable": JSONValue(unavailable)]
        },
        AdminMethod(name: "service.unregister", summary: "Removes a service this connection registered (closing the connection does the same).",
                    parameters: [.required("name", .string, "Service name.")],
                    result: "`{unregistered: name}`", example: ["name": "transcriber"]) { a, call throws(RPCError) in
            let name = a.text("name")
            let events = try call.requireEvents()
            do throws(EventDispatcher.ServiceError) { try events.unregister(name, connection: call.session.connection) } catch { throw serviceError(error) }
            return ["unregistered": .string(name)]
        },
        AdminMethod(name: "service.list", summary: "Connected services, and for every known event type who emits it (`tandem` for Tandem's own).",
                    parameters: [],
                    result: "`{services: [{name, connection, events_provided, events_consumed, actions_provided, actions_consumed, registered_at}], event_types: [{type, emitters, available}]}`",
                    example: [:]) { _, call throws(RPCError) in
            let (services, emitters) = try call.requireEvents().services()
            return ["services": .array(services.map(\.json)),
                    "event_types": .array(emitters.keys.sorted().map { type in
                        ["type": .string(type), "emitters": JSONValue(emitters[type] ?? []), "available": .bool(!(emitters[type] ?? []).isEmpty)]
                    })]
        },
    ]
}
