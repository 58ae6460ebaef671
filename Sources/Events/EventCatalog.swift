/// The event types Tandem itself emits. They are always available: their emitter is the gateway,
/// which is there whenever anyone can ask. Services add their own types (`service.register`).
public enum EventCatalog {
    public struct Entry: Sendable {
        public let type: String
        /// Which part of Tandem writes it (the event's `source`).
        public let source: String
        public let summary: String
    }

    public static let builtIn: [Entry] = [
        Entry(type: "call.incoming", source: "gateway", summary: "A call was admitted and is being routed."),
        Entry(type: "call.answered", source: "gateway", summary: "A call was answered."),
        Entry(type: "call.missed", source: "gateway", summary: "The callee missed a call (busy, no answer, cancelled); also `call.ended`."),
        Entry(type: "call.ended", source: "gateway", summary: "A call's record was written; carries a summary with its `cdr_id`."),
        Entry(type: "registration.changed", source: "registrar", summary: "A device registered, was removed or expired."),
        Entry(type: "availability.changed", source: "registry", summary: "A user's modes, profiles or override changed."),
        Entry(type: "contacts.changed", source: "registry", summary: "A user's contact list was defined or deleted."),
        Entry(type: "messages.changed", source: "registry", summary: "A voicemail application reported a change in a user's messages waiting."),
        Entry(type: "gauge.updated", source: "gateway", summary: "An ended call changed the usage of an account on a plan."),
        Entry(type: "gauge.exceeded", source: "gateway", summary: "A call went past a soft plan limit."),
        Entry(type: "app.activated", source: "registry", summary: "An app was activated on a number."),
        Entry(type: "app.deactivated", source: "registry", summary: "An app was deactivated on a number."),
        Entry(type: "number.provider_switched", source: "registry", summary: "A number moved to another carrier."),
        Entry(type: "account.status_changed", source: "registry", summary: "An account was suspended or restored."),
        Entry(type: "auth.banned", source: "gateway", summary: "A source address was banned after failed authentications."),
        Entry(type: "storage.recovered", source: "registry", summary: "The registry file took the writes of the call log or the location again after failing them; carries when the outage began and ended, the failed attempts and the last reason. (Its start is pushed at once as `events.alert` `storage.failing`.)"),
        Entry(type: "security.flood", source: "gateway", summary: "A source address sent more than security.flood_limit messages in its window and is dropped for security.flood_ban_time."),
    ]

    public static let builtInTypes: Set<String> = Set(builtIn.map(\.type))
}
