import RegistryModel
import Routing

/// Names a subscription: its dialog's Call-ID and the notifier's own tag (RFC 6665 §4.1.2.2: a
/// subscription is identified by its dialog and Event header).
public struct SubscriptionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var rawValue: String

    public init(callID: String, localTag: String) {
        rawValue = callID + ";" + localTag
    }

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The notifier's side of a subscription dialog (RFC 3261 §12.1.1 as the UAS of the SUBSCRIBE):
/// what every NOTIFY of it carries and where it goes.
public struct NotifierDialog: Sendable, Equatable {
    public var callID: String
    /// Tandem's tag (To of the SUBSCRIBE, From of each NOTIFY).
    public var localTag: String
    /// The subscriber's tag.
    public var remoteTag: String
    /// The presentity's address, as the SUBSCRIBE's To named it.
    public var localURI: String
    /// The subscriber, as the SUBSCRIBE's From named it.
    public var remoteURI: String
    /// The subscriber's Contact: the Request-URI of each NOTIFY.
    public var remoteTarget: String
    /// The SUBSCRIBE's Record-Route values, in order: the NOTIFY's Route set.
    public var routeSet: [String]
    /// Where a NOTIFY is sent when the route set is empty: the SUBSCRIBE's source, `udp:host:port`
    /// (its flow back through any NAT, RFC 3581).
    public var destination: String
    /// The listen point the SUBSCRIBE arrived on, `udp:host:port`; the NOTIFY's Contact names it.
    public var local: String
    /// The Event header's `id` parameter (RFC 6665 §8.2.1), echoed in every NOTIFY.
    public var eventID: String?
    /// The last CSeq of the subscriber's requests in this dialog (§12.2.2: lower ones are refused).
    public var remoteCSeq: UInt32

    public init(callID: String, localTag: String, remoteTag: String, localURI: String, remoteURI: String, remoteTarget: String,
                routeSet: [String], destination: String, local: String, eventID: String?, remoteCSeq: UInt32) {
        self.callID = callID
        self.localTag = localTag
        self.remoteTag = remoteTag
        self.localURI = localURI
        self.remoteURI = remoteURI
        self.remoteTarget = remoteTarget
        self.routeSet = routeSet
        self.destination = destination
        self.local = local
        self.eventID = eventID
        self.remoteCSeq = remoteCSeq
    }

    public var id: SubscriptionID { SubscriptionID(callID: callID, localTag: localTag) }
}

/// The event packages Tandem notifies of (RFC 6665 §7.2).
public enum EventPackage: String, Sendable, CaseIterable {
    /// RFC 3856: a user's connectability, as PIDF.
    case presence
    /// RFC 3842: a user's voice messages waiting.
    case messageSummary = "message-summary"
    /// RFC 3857: who watches a user's presence (RFC 3858 documents).
    case watcherInfo = "presence.winfo"
}

/// What a subscription watches: one user's state in one event package.
public struct Resource: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var package: EventPackage
    public var user: String

    public init(_ package: EventPackage, _ user: String) {
        self.package = package
        self.user = user
    }

    public var description: String { "\(package.rawValue):\(user)" }
    public static func < (a: Self, b: Self) -> Bool { (a.user, a.package.rawValue) < (b.user, b.package.rawValue) }
}

/// One watcher's subscription to one user's state in one package, and where its notifications stand.
public struct Subscription: Sendable, Equatable {
    public var package: EventPackage
    /// The user watched (the presentity, for presence).
    public var presentity: String
    /// The watching user's id.
    public var watcher: String
    public var dialog: NotifierDialog
    /// Milliseconds since the epoch.
    public var expiresAt: Int64
    /// The CSeq of the last NOTIFY sent.
    public var localCSeq: UInt32
    /// The TCP connection the SUBSCRIBE came on, while this process lives (never stored).
    public var connection: UInt64?

    /// The newest view computed for the watcher, the view their phone acknowledged last, and the one
    /// on its way: a NOTIFY leaves only when none is in flight, and always carries the newest view,
    /// so a burst of changes ends with the latest state and never shows an older one after a newer
    /// one (RFC 3856 §6.10).
    var wanted: SubscriptionView?
    var sent: SubscriptionView?
    /// The presentity authorised this watcher after it had been pending (RFC 3858 `approved`).
    var approved = false
    var inFlight: Flight?
    /// A NOTIFY must go even if the view did not change (a new or refreshed subscription, §4.2.1).
    var owed = false
    var failures = 0
    var retryAt: Int64?

    public init(package: EventPackage = .presence, presentity: String, watcher: String, dialog: NotifierDialog, expiresAt: Int64,
                localCSeq: UInt32) {
        self.package = package
        self.presentity = presentity
        self.watcher = watcher
        self.dialog = dialog
        self.expiresAt = expiresAt
        self.localCSeq = localCSeq
    }

    public var id: SubscriptionID { dialog.id }
    public var resource: Resource { Resource(package, presentity) }
    public var acknowledged: SubscriptionView? { sent }
    /// Pending: the presentity has not authorised the watcher yet.
    public var isPending: Bool { wanted == .pending }
    public var isWaiting: Bool { inFlight != nil }

    /// The NOTIFY on its way and the view it carries.
    struct Flight: Sendable, Equatable {
        var cseq: UInt32
        var view: SubscriptionView
    }
}

/// The Subscription-State of a NOTIFY (RFC 6665 §8.2.3).
public enum SubscriptionState: Sendable, Equatable {
    case active(expires: Int)
    case pending(expires: Int)
    /// `timeout` (expired or ended by the subscriber), `rejected` (refused by the presentity),
    /// `noresource` (the presentity is gone).
    case terminated(reason: String)

    public var headerValue: String {
        switch self {
        case .active(let expires): "active;expires=\(expires)"
        case .pending(let expires): "pending;expires=\(expires)"
        case .terminated(let reason): "terminated;reason=\(reason)"
        }
    }
}

/// A NOTIFY to send: its dialog, sequence number, state and view.
public struct SubscriptionNotify: Sendable, Equatable {
    public var id: SubscriptionID
    public var package: EventPackage
    public var presentity: String
    public var dialog: NotifierDialog
    public var cseq: UInt32
    public var state: SubscriptionState
    /// What the body shows; nil for a NOTIFY without a body (pending, or terminated without one).
    public var body: SubscriptionView?

    /// The connectability a presence NOTIFY's body shows.
    public var shown: ConnectabilityState? {
        if case .state(let state)? = body { state } else { nil }
    }
}

/// Every subscription of every package and what each owes its watcher: the pure part of the
/// notifier. Inputs are the subscriber's requests, new views, NOTIFY answers and the passing of time;
/// outputs are NOTIFYs to send and rows to store or delete. No clock, no socket. The watcher
/// information of a user (RFC 3857) is kept here too, since it is made of this table's own rows:
/// every change to a user's presence watchers updates the `presence.winfo` subscriptions to them.
public struct SubscriptionTable: Sendable {
    public enum Action: Sendable, Equatable {
        case notify(SubscriptionNotify)
        /// Keep the subscription's dialog and expiry in the file (new or refreshed).
        case store(Subscription)
        /// The subscription ended: delete its row.
        case remove(SubscriptionID)
    }

    /// How a NOTIFY's answer bears on its subscription.
    public enum Outcome: Sendable, Equatable {
        case delivered
        /// A timeout, a transport failure, 408, 5xx (but 501), 6xx (but 603) or 429: the watcher
        /// may be back soon. The subscription stays until it expires; the newest view is sent again
        /// after a back-off.
        case transient
        /// 481 (the watcher dropped the dialog), 489, 403, 404, 405, 501, 603: it will not accept
        /// NOTIFYs of this dialog, so the subscription ends (RFC 6665 §4.2.2).
        case definitive

        public init(status: Int) {
            switch status {
            case 200..<300: self = .delivered
            case 481, 489, 403, 404, 405, 501, 603: self = .definitive
            default: self = .transient
            }
        }
    }

    public private(set) var subscriptions: [SubscriptionID: Subscription] = [:]
    private var byResource: [Resource: Set<SubscriptionID>] = [:]
    private var perWatcher: [String: Int] = [:]
    /// Subscriptions by the second they expire or are due a retry; a tick visits only due seconds.
    private var due: [Int64: Set<SubscriptionID>] = [:]
    private var lastTick: Int64?

    /// Back-off after a failed NOTIFY: 5 s, doubling, at most a minute.
    public static func retryDelay(failures: Int) -> Int64 {
        min(60_000, 5_000 << min(max(failures - 1, 0), 4))
    }

    public init() {}

    public var count: Int { subscriptions.count }
    /// Resources watched, all packages together.
    public var resourceCount: Int { byResource.count }

    public func subscription(_ id: SubscriptionID) -> Subscription? { subscriptions[id] }

    public func ids(watching resource: Resource) -> [SubscriptionID] {
        byResource[resource].map { Array($0) } ?? []
    }

    /// The resources of `package` someone watches.
    public func resources(_ package: EventPackage) -> [Resource] { byResource.keys.filter { $0.package == package } }

    public func isWatched(_ resource: Resource) -> Bool { byResource[resource] != nil }

    /// The watcher information of `user` (RFC 3858): their presence watchers, active or pending.
    public func watchers(of user: String) -> [WatcherEntry] {
        ids(watching: Resource(.presence, user)).compactMap { id -> WatcherEntry? in
            guard let entry = subscriptions[id], let view = entry.wanted, view != .rejected else { return nil }
            return WatcherEntry(id: id.rawValue, watcher: entry.watcher, uri: entry.dialog.remoteURI,
                                status: view == .pending ? .pending : .active,
                                event: entry.approved && view != .pending ? "approved" : "subscribe")
        }.sorted { $0.id < $1.id }
    }

    /// Subscriptions a watcher holds.
    public func count(heldBy watcher: String) -> Int { perWatcher[watcher] ?? 0 }

    /// A new subscription, or a refresh of one (same dialog): accepted for `expiresAt`, stored, and
    /// notified at once of `view` (RFC 6665 §4.2.1.1, §4.2.1.2).
    public mutating func subscribe(_ subscription: Subscription, view: SubscriptionView, now: Int64) -> [Action] {
        var entry = subscription
        if let existing = subscriptions[subscription.id] {
            entry = existing
            entry.expiresAt = subscription.expiresAt
            entry.dialog.remoteCSeq = subscription.dialog.remoteCSeq
            entry.dialog.remoteTarget = subscription.dialog.remoteTarget
        }
        entry.owed = true
        entry.wanted = view
        put(entry)
        let sent = advance(subscription.id, now: now)
        // Stored with the CSeq of the NOTIFY it is about to get.
        return [.store(subscriptions[subscription.id] ?? entry)] + sent + watchersChanged(entry, now: now)
    }

    /// Puts back a subscription read from the file after a restart: its watcher is told the present
    /// view as soon as one is given.
    public mutating func restore(_ subscription: Subscription) {
        var entry = subscription
        entry.owed = true
        put(entry)
    }

    /// The subscriber ended it (Expires: 0): a last NOTIFY with the state and `terminated`.
    public mutating func unsubscribe(_ id: SubscriptionID, remoteCSeq: UInt32, view: SubscriptionView, now: Int64) -> [Action] {
        guard var entry = subscriptions[id] else { return [] }
        entry.dialog.remoteCSeq = remoteCSeq
        entry.wanted = view
        subscriptions[id] = entry
        return terminate(id, reason: "timeout", withView: true, now: now)
    }

    /// The watcher's view of the presentity is now `view`: a NOTIFY if it differs from what the
    /// watcher holds and none is in flight.
    public mutating func update(_ id: SubscriptionID, view: SubscriptionView, now: Int64) -> [Action] {
        guard var entry = subscriptions[id] else { return [] }
        if view == .rejected { return terminate(id, reason: "rejected", withView: false, now: now) }
        guard entry.wanted != view || entry.owed else { return [] }
        let wasPending = entry.isPending
        if wasPending, case .state = view { entry.approved = true }
        entry.wanted = view
        subscriptions[id] = entry
        let sent = advance(id, now: now)
        return wasPending != entry.isPending ? sent + watchersChanged(entry, now: now) : sent
    }

    /// The answer to NOTIFY `cseq` (a timeout or transport failure is `status` 408).
    public mutating func answered(_ id: SubscriptionID, cseq: UInt32, status: Int, now: Int64) -> [Action] {
        guard var entry = subscriptions[id], let flight = entry.inFlight, flight.cseq == cseq else { return [] }
        entry.inFlight = nil
        switch Outcome(status: status) {
        case .delivered:
            entry.sent = flight.view
            entry.failures = 0
            entry.retryAt = nil
            subscriptions[id] = entry
            return advance(id, now: now)
        case .transient:
            entry.failures += 1
            entry.owed = true
            let retry = now + Self.retryDelay(failures: entry.failures)
            entry.retryAt = retry
            subscriptions[id] = entry
            schedule(id, at: retry)
            return []
        case .definitive:
            return remove(id, now: now)
        }
    }

    /// Expiries and retries due by `now`.
    public mutating func tick(now: Int64) -> [Action] {
        let second = now / 1000
        let from = lastTick ?? (due.keys.min() ?? second)
        lastTick = second + 1
        guard from <= second else { return [] }
        var actions: [Action] = []
        let seconds = due.count < Int(second - from + 1) ? due.keys.filter { $0 >= from && $0 <= second }.sorted() : Array(from...second)
        for slot in seconds {
            guard let ids = due.removeValue(forKey: slot) else { continue }
            for id in ids.sorted() {
                guard let entry = subscriptions[id] else { continue }
                if entry.expiresAt <= now {
                    actions += terminate(id, reason: "timeout", withView: true, now: now)
                } else if let retry = entry.retryAt, retry <= now, entry.inFlight == nil {
                    subscriptions[id]?.retryAt = nil
                    actions += advance(id, now: now)
                }
            }
        }
        return actions
    }

    /// Ends every subscription to a user who no longer exists (`noresource`), in every package.
    public mutating func userGone(_ user: String, now: Int64) -> [Action] {
        EventPackage.allCases.flatMap { package in
            ids(watching: Resource(package, user)).sorted().flatMap { terminate($0, reason: "noresource", withView: false, now: now) }
        }
    }

    // MARK: Internals

    private mutating func put(_ entry: Subscription) {
        if subscriptions[entry.id] == nil { perWatcher[entry.watcher, default: 0] += 1 }
        subscriptions[entry.id] = entry
        byResource[entry.resource, default: []].insert(entry.id)
        schedule(entry.id, at: entry.expiresAt)
    }

    /// A user's presence watchers changed (one came, went, or was authorised): the subscriptions to
    /// their watcher information are given the new list.
    private mutating func watchersChanged(_ entry: Subscription, now: Int64) -> [Action] {
        guard entry.package == .presence, let ids = byResource[Resource(.watcherInfo, entry.presentity)] else { return [] }
        let list = SubscriptionView.watchers(watchers(of: entry.presentity))
        return ids.sorted().flatMap { update($0, view: list, now: now) }
    }

    private mutating func schedule(_ id: SubscriptionID, at time: Int64) {
        let second = (time + 999) / 1000
        due[max(second, lastTick ?? second), default: []].insert(id)
    }

    /// Sends the newest view if nothing is in flight and the watcher is owed one or holds another.
    private mutating func advance(_ id: SubscriptionID, now: Int64) -> [Action] {
        guard var entry = subscriptions[id], entry.inFlight == nil, entry.retryAt == nil, let view = entry.wanted,
              entry.owed || entry.sent != view else { return [] }
        entry.localCSeq &+= 1
        entry.owed = false
        entry.inFlight = Subscription.Flight(cseq: entry.localCSeq, view: view)
        subscriptions[id] = entry
        let expires = Int(max(0, (entry.expiresAt - now + 999) / 1000))
        let state: SubscriptionState
        var body: SubscriptionView?
        switch view {
        case .pending: state = .pending(expires: expires)
        case .rejected: return terminate(id, reason: "rejected", withView: false, now: now)
        case .state, .messages, .watchers: (state, body) = (.active(expires: expires), view)
        }
        return [.notify(SubscriptionNotify(id: id, package: entry.package, presentity: entry.presentity, dialog: entry.dialog,
                                           cseq: entry.localCSeq, state: state, body: body))]
    }

    /// A last NOTIFY (`terminated`), then the subscription is gone; its answer is not awaited.
    private mutating func terminate(_ id: SubscriptionID, reason: String, withView: Bool, now: Int64) -> [Action] {
        guard var entry = subscriptions[id] else { return [] }
        entry.localCSeq &+= 1
        var body: SubscriptionView?
        if withView, let view = entry.wanted, view != .pending, view != .rejected { body = view }
        let notify = SubscriptionNotify(id: id, package: entry.package, presentity: entry.presentity, dialog: entry.dialog,
                                        cseq: entry.localCSeq, state: .terminated(reason: reason), body: body)
        return [.notify(notify)] + remove(id, now: now)
    }

    private mutating func remove(_ id: SubscriptionID, now: Int64) -> [Action] {
        guard let entry = subscriptions.removeValue(forKey: id) else { return [] }
        perWatcher[entry.watcher, default: 1] -= 1
        if perWatcher[entry.watcher] == 0 { perWatcher[entry.watcher] = nil }
        byResource[entry.resource]?.remove(id)
        if byResource[entry.resource]?.isEmpty == true { byResource[entry.resource] = nil }
        return [.remove(id)] + watchersChanged(entry, now: now)
    }
}
