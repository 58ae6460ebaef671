import Admin
import Dispatch
import Events
import Gateway
import Registry
import Routing
import SIPTransaction
import SIPTransport

/// Why a node could not be assembled: the stage and the store's reason.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    public enum Stage: String, Sendable {
        case registrations = "cannot load the registrations"
        case interruptedCalls = "cannot close the calls of the last run"
        case events = "cannot start event delivery"
    }

    public var stage: Stage
    public var reason: String
    public var description: String { "\(stage.rawValue): \(reason)" }
}

/// One running Tandem around a registry: the location and the call log that write for it, the
/// gateway, event delivery and the admin dispatcher, wired in one place for the `tandem` executable,
/// the benchmarks and the in-process trace network — so what a test or a benchmark runs is what an
/// operator runs, and the next part (presence, TLS, a cluster) is wired once.
///
/// A node owns no socket and no clock: it is given a transport (real sockets, or the trace network's
/// memory), timers (the timer thread, or virtual time) and a wall clock.
public final class Node: Sendable {
    public struct Options: Sendable {
        /// Event delivery to push subscribers, webhooks and services; nil runs without it (the trace
        /// network and the benchmarks read events from the store instead).
        public var events: EventDispatcher.Options?
        /// Where maintenance (binding expiry, nonce and ban sweeps, storage reports) runs; nil runs it
        /// on the timer's own thread (virtual time, where a trace must see its effect at once).
        public var maintenance: DispatchQueue? = DispatchQueue(label: "tandem.maintenance", qos: .utility)
        /// Where the presence server works out views and sends NOTIFYs after a change; nil runs it on
        /// the thread of the change (virtual time).
        public var presence: DispatchQueue? = DispatchQueue(label: "tandem.presence")
        public var version = TandemVersion.current
        public init() {}
    }

    public let registry: Registry
    public let location: Location
    public let callLog: CallLog
    public let gateway: Gateway
    public let events: EventDispatcher?
    public let dispatcher: AdminDispatcher
    /// Counters of the transport the node was given, when it has any (`stats.get`).
    private let transportStatistics: TransportStatistics?
    private let maintenance: DispatchQueue?
    private let presence: DispatchQueue?
    /// Where presence subscriptions are written, to outlive a restart.
    public let subscriptions: SubscriptionStore

    /// Assembles a node. `configuration.listen` must say where the transport listens (its actual
    /// ports: Via and Record-Route carry them). Calls a previous run left in progress are closed as `interrupted` first, so
    /// no new call is recorded before the old ones are ended.
    /// - Returns: the node, and the calls closed as interrupted (for the start-up log).
    public static func assemble(configuration: Configuration, registry: Registry, transport: any Transport,
                                transportStatistics: TransportStatistics? = nil, timers: any TimerService,
                                logger: Logger, clock: @escaping @Sendable () -> Int64, dialplans: DialplanSet = DialplanSet(),
                                options: Options = Options()) throws(NodeError) -> (Node, interrupted: [CallRecord]) {
        let location: Location
        do {
            location = try Location(registry: registry, now: clock(), persistence: configuration.registrarPersistence)
        } catch {
            throw NodeError(stage: .registrations, reason: "\(error)")
        }
        let callLog = CallLog(registry: registry)
        let interrupted: [CallRecord]
        do {
            interrupted = try callLog.closeInterruptedCalls()
        } catch {
            throw NodeError(stage: .interruptedCalls, reason: "\(error)")
        }
        var events: EventDispatcher?
        if let eventOptions = options.events {
            let eventLogger = logger.labeled("events")
            do {
                events = try EventDispatcher(registry: registry, options: eventOptions, clock: clock,
                                             log: { message, fields in eventLogger.warning(message, fields) })
            } catch {
                throw NodeError(stage: .events, reason: "\(error)")
            }
        }
        let subscriptions = SubscriptionStore(registry: registry)
        let gateway = Gateway(settings: Gateway.Settings(configuration), transport: transport, timers: timers, logger: logger.labeled("gateway"),
                              registry: registry, location: location, callLog: callLog, subscriptions: subscriptions,
                              dialplans: DialplanLibrary(dialplans),
                              nonceSecret: configuration.authSecret, clock: clock)
        let node = Node(registry: registry, location: location, callLog: callLog, subscriptions: subscriptions, gateway: gateway,
                        events: events, transportStatistics: transportStatistics, version: options.version,
                        maintenance: options.maintenance, presence: options.presence, clock: clock)
        return (node, interrupted)
    }

    private init(registry: Registry, location: Location, callLog: CallLog, subscriptions: SubscriptionStore, gateway: Gateway,
                 events: EventDispatcher?, transportStatistics: TransportStatistics?, version: String, maintenance: DispatchQueue?,
                 presence: DispatchQueue?, clock: @escaping @Sendable () -> Int64) {
        self.registry = registry
        self.location = location
        self.callLog = callLog
        self.subscriptions = subscriptions
        self.presence = presence
        self.gateway = gateway
        self.events = events
        self.transportStatistics = transportStatistics
        self.maintenance = maintenance
        let routing = RoutingAccess(dialplans: { gateway.dialplans.current }, policy: { gateway.routingPolicy(gateway.currentSettings) },
                                    reload: { gateway.reloadDialplans() },
                                    presenceSubscriptions: { gateway.presenceSubscriptions(of: $0) })
        dispatcher = AdminDispatcher(registry: registry, version: version, location: location, authFailures: gateway.authFailures,
                                     routing: routing, callLog: callLog, callsInProgress: { gateway.callsInProgress(accountID: $0) },
                                     events: events, statistics: { [transportStatistics] in
                                         Self.counters(transportStatistics, gateway, events, location, callLog, registry)
                                     }, clock: clock)
    }

    /// Starts what runs by itself: maintenance, event delivery and the storage alerts. The transport
    /// is started by its owner, once the node can take what it receives (`receive`).
    public func start() {
        gateway.startMaintenance(on: maintenance)
        gateway.startPresence(on: presence)
        if let events {
            events.start()
            events.alertOnStorageOutages()
        }
    }

    /// A message from the transport.
    @inline(__always)
    public func receive(_ message: InboundMessage) {
        gateway.receive(message)
    }

    /// Stops at a shutdown, after the transport: what was acknowledged is written, calls still in
    /// progress are ended as `interrupted`, undelivered webhook events stay owed in the store.
    /// - Returns: the calls closed as interrupted.
    @discardableResult
    public func stop() -> [CallRecord] {
        location.flush()
        subscriptions.flush()
        callLog.flush()
        let closed = (try? callLog.closeInterruptedCalls()) ?? []
        events?.stop()
        return closed
    }

    /// Every counter, as `stats.get` and SIGUSR1 show them (docs/statistics.md).
    public func statistics() -> [(String, Int)] {
        Self.counters(transportStatistics, gateway, events, location, callLog, registry)
    }

    private static func counters(_ transport: TransportStatistics?, _ gateway: Gateway, _ events: EventDispatcher?,
                                 _ location: Location, _ callLog: CallLog, _ registry: Registry) -> [(String, Int)] {
        let log = callLog.status, writes = location.writeStatus, presence = gateway.presenceCounts
        return (transport?.snapshot() ?? []) + gateway.statistics.snapshot() + (events?.statistics() ?? [])
            + [("registered_bindings", location.count), ("calls_in_progress", gateway.openCallCount),
               ("call_log_pending", log.pending), ("call_log_failures", log.failures),
               ("location_pending", writes.pending), ("location_write_failures", writes.failures),
               ("location_writes_refused", writes.dropped),
               ("presence_subscriptions", presence.subscriptions), ("presence_presentities", presence.presentities),
               ("storage_failing", registry.storageHealth.current.count)]
    }
}
