import JSON
import Registry

/// A service on an admin connection: what it offers and what it listens for.
public struct ServiceRegistration: Sendable, Equatable {
    public var name: String
    /// The admin connection it registered on; it is gone when that connection closes.
    public var connection: Int
    public var eventsProvided: [String]
    public var eventsConsumed: [EventPattern]
    public var actionsProvided: [String]
    public var actionsConsumed: [String]
    public var registeredAt: String

    public init(name: String, connection: Int, eventsProvided: [String] = [], eventsConsumed: [EventPattern] = [],
                actionsProvided: [String] = [], actionsConsumed: [String] = [], registeredAt: String = "") {
        self.name = name
        self.connection = connection
        self.eventsProvided = eventsProvided
        self.eventsConsumed = eventsConsumed
        self.actionsProvided = actionsProvided
        self.actionsConsumed = actionsConsumed
        self.registeredAt = registeredAt
    }

    public var json: JSONValue {
        ["name": .string(name), "connection": JSONValue(connection), "events_provided": JSONValue(eventsProvided),
         "events_consumed": JSONValue(eventsConsumed.map(\.text)), "actions_provided": JSONValue(actionsProvided),
         "actions_consumed": JSONValue(actionsConsumed), "registered_at": .string(registeredAt)]
    }
}

/// The services registered now, and which event types have someone to emit them. Tandem's own
/// types always do. Registering and leaving return what became available or unavailable, for the
/// dispatcher to tell subscribers.
public struct ServiceDirectory: Sendable {
    public enum Change: Sendable, Equatable {
        /// `type` has an emitter again: `service`.
        case available(type: String, service: String)
        /// The last emitter of `type` left.
        case unavailable(type: String, service: String)

        public var type: String {
            switch self {
            case .available(let type, _), .unavailable(let type, _): type
            }
        }
    }

    public enum Refusal: Error, Equatable {
        /// Another connection holds the name.
        case nameTaken(String)
    }

    public private(set) var services: [String: ServiceRegistration] = [:]

    public init() {}

    /// Who emits `type`: `tandem` for its own types, else the services that registered it.
    public func emitters(of type: String) -> [String] {
        if EventCatalog.builtInTypes.contains(type) { return ["tandem"] }
        return services.values.filter { $0.eventsProvided.contains(type) }.map(\.name).sorted()
    }

    public func isAvailable(_ type: String) -> Bool { !emitters(of: type).isEmpty }

    /// Registers `service`, replacing what the same connection registered under its name before.
    public mutating func register(_ service: ServiceRegistration) throws(Refusal) -> [Change] {
        if let existing = services[service.name], existing.connection != service.connection { throw .nameTaken(service.name) }
        let before = emittedTypes
        services[service.name] = service
        return changes(from: before, by: service.name)
    }

    /// Removes the service `name` of `connection`; nil when it has none by that name.
    public mutating func unregister(_ name: String, connection: Int) -> [Change]? {
        guard let existing = services[name], existing.connection == connection else { return nil }
        let before = emittedTypes
        services[name] = nil
        return changes(from: before, by: name)
    }

    /// Removes every service of a closed connection.
    public mutating func connectionClosed(_ connection: Int) -> [Change] {
        var all: [Change] = []
        for name in services.values.filter({ $0.connection == connection }).map(\.name).sorted() {
            all += unregister(name, connection: connection) ?? []
        }
        return all
    }

    /// Event types some service emits (Tandem's own are never in or out).
    private var emittedTypes: Set<String> {
        Set(services.values.flatMap(\.eventsProvided)).subtracting(EventCatalog.builtInTypes)
    }

    /// What `service` registering, re-registering or leaving changed.
    private func changes(from before: Set<String>, by service: String) -> [Change] {
        let after = emittedTypes
        return after.subtracting(before).sorted().map { .available(type: $0, service: service) }
            + before.subtracting(after).sorted().map { .unavailable(type: $0, service: service) }
    }
}
