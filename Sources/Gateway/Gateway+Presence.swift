import Dispatch
import JSON
import Presence
import Registry
import Routing
import SIP
import SIPTransaction
import SIPTransport
import Synchronization

/// What the notifier keeps besides its pure table: the store, the resources whose views must be
/// worked out again, the minute the rules were last looked at, and the devices told of messages
/// waiting without a subscription.
final class PresenceServer: Sendable {
    let table = Mutex(SubscriptionTable())
    let store: SubscriptionStore?
    /// Resources changed since the last pass, and whether a pass is scheduled.
    let dirty = Mutex<(resources: Set<Resource>, scheduled: Bool)>(([], false))
    /// Per user, the contacts last sent an unsolicited `message-summary` NOTIFY.
    let unsolicited = Mutex<[String: Set<String>]>([:])
    /// Where passes run; nil runs them on the caller's thread (virtual time in tests).
    let queue = Mutex<DispatchQueue?>(nil)
    let lastMinute = Atomic<Int64>(0)

    init(store: SubscriptionStore?) {
        self.store = store
    }
}

/// The notifier (docs/presence.md): SUBSCRIBE for the `presence` event of a Tandem user (RFC 6665,
/// RFC 3856), for a user's own `message-summary` (RFC 3842) and `presence.winfo` (RFC 3857) is
/// answered here, and the watcher gets a NOTIFY of the state at once and on every change.
extension Gateway {
    /// What each package's NOTIFY bodies are, and who may watch a user in it.
    static func contentType(_ package: EventPackage) -> String {
        switch package {
        case .presence: PresenceDocument.contentType
        case .messageSummary: MessageSummaryDocument.contentType
        case .watcherInfo: WatcherInfoDocument.contentType
        }
    }

    /// Handles a SUBSCRIBE that is the notifier's; false leaves it to the proxy (another event
    /// package, another domain, another server's dialog).
    func handleSubscribe(_ context: RequestContext) -> Bool {
        let (request, settings) = (context.message, context.settings)
        guard settings.presence.enabled, request.routeCount == 0 else { return false }
        let event = request.event
        let package = event.flatMap { EventPackage(rawValue: $0.package) }
        if let toTag = request.toTag {
            let id = SubscriptionID(callID: request.callID ?? "", localTag: toTag)
            guard let subscription = presence.table.withLock({ $0.subscription(id) }) else {
                // A refresh of a subscription this Tandem does not hold (expired, or lost in a
                // restart): the subscriber must start again (RFC 6665 §4.1.2.2).
                guard package != nil, isOurs(request.requestURI, settings),
                      request.requestURI?.user.map({ presentity($0, context.snapshot) != nil }) ?? true else { return false }
                statistics.presenceRefused.increment()
                respond(to: context, status: 481, reason: "Subscription does not exist")
                return true
            }
            refreshSubscription(context, subscription, event: event)
            return true
        }
        guard let event, let package, isOurs(request.requestURI, settings), let user = request.requestURI?.user else { return false }
        guard let presentity = presentity(user, context.snapshot) else {
            statistics.presenceRefused.increment()
            respond(to: context, status: 404, reason: "No such user")
            return true
        }
        subscribe(context, to: Resource(package, presentity), event: event)
        return true
    }

    /// The user a Request-URI's user part names: a SIP username, or a personal number's owner.
    func presentity(_ user: String, _ snapshot: RegistrySnapshot) -> String? {
        if user.hasPrefix("+") { return snapshot.number(user)?.ownerUserID }
        return snapshot.user(sipUsername: user)?.value.id
    }

    private func subscribe(_ context: RequestContext, to resource: Resource, event: EventHeader) {
        let (request, inbound, settings) = (context.message, context.inbound, context.settings)
        // The watcher: a user who proves their password, or the user a trusted party names in From.
        let watcher: String
        if context.trusted != nil {
            guard let from = request.from?.uri?.user, let user = self.presentity(from, context.snapshot) else {
                statistics.presenceRefused.increment()
                respond(to: context, status: 403, reason: "Watcher is not a Tandem user")
                return
            }
            watcher = user
        } else {
            guard let (user, _) = authenticate(context, registrar: false) else { return }
            watcher = user.value.id
        }
        // A user's messages and watchers are theirs alone.
        if resource.package != .presence, watcher != resource.user {
            statistics.presenceRefused.increment()
            respond(to: context, status: 403, reason: "Only the user may watch their own \(resource.package.rawValue)")
            return
        }
        // libosip2 gives each media range of Accept as one value.
        let accept = request.headerValues("Accept").map { $0.lowercased() }
        let type = Self.contentType(resource.package)
        if !accept.isEmpty, !accept.contains(where: { $0.hasPrefix(type) || $0.hasPrefix("*/*") || $0.hasPrefix("application/*") }) {
            statistics.presenceRefused.increment()
            respond(to: context, status: 406, reason: "Not Acceptable") { response in
                try response.addHeader("Accept", type)
            }
            return
        }
        guard let remoteTag = request.fromTag, let callID = request.callID, let cseq = request.cseq,
              let contact = request.headerValues("Contact").first.flatMap({ NameAddress(parsing: $0)?.uri }) else {
            statistics.presenceRefused.increment()
            respond(to: context, status: 400, reason: "SUBSCRIBE needs a From tag and a Contact")
            return
        }
        guard let expires = grantedExpires(context) else { return }
        let localTag = statelessTag(request)
        let id = SubscriptionID(callID: callID, localTag: localTag)
        let now = clock()
        let (existing, held, total) = presence.table.withLock { ($0.subscription(id), $0.count(heldBy: watcher), $0.count) }
        if let existing, existing.dialog.remoteCSeq == UInt32(truncatingIfNeeded: cseq.number) {
            // A retransmission of the SUBSCRIBE that made it: the same answer, no second NOTIFY.
            respondSubscribed(context, expires: max(0, Int((existing.expiresAt - now) / 1000)))
            return
        }
        if held >= settings.presence.maxPerWatcher {
            statistics.presenceRefused.increment()
            respond(to: context, status: 403, reason: "Too many subscriptions for this watcher")
            return
        }
        if total >= settings.presence.maxSubscriptions {
            statistics.presenceRefused.increment()
            respond(to: context, status: 503, reason: "Too many subscriptions") { response in try response.addHeader("Retry-After", "60") }
            return
        }
        let dialog = NotifierDialog(
            callID: callID, localTag: localTag, remoteTag: remoteTag, localURI: request.to?.uri?.description ?? "",
            remoteURI: request.from?.uri?.description ?? "", remoteTarget: contact.description,
            routeSet: request.headerValues("Record-Route"),
            destination: ListenPoint(transport: inbound.transport, address: inbound.source).description,
            local: inbound.local.description, eventID: event.id, remoteCSeq: UInt32(truncatingIfNeeded: cseq.number))
        var subscription = Subscription(package: resource.package, presentity: resource.user, watcher: watcher, dialog: dialog,
                                        expiresAt: now + Int64(expires) * 1000, localCSeq: 0)
        subscription.connection = inbound.connection?.rawValue
        let view = currentView(resource, watcher: watcher, context.snapshot, now: now) ?? .state(.unknown)
        if view == .rejected {
            // The user refused this watcher (`presence.authorise decision=refuse`).
            statistics.presenceRefused.increment()
            respond(to: context, status: 403, reason: "Refused by the user")
            return
        }
        respondSubscribed(context, expires: expires)
        let actions = presence.table.withLock { table in
            // Expires: 0 on a new subscription is a fetch: one NOTIFY with the state, and done (§4.2.1.1).
            expires == 0 ? table.subscribe(subscription, view: view, now: now) + table.unsubscribe(id, remoteCSeq: dialog.remoteCSeq, view: view, now: now)
                         : table.subscribe(subscription, view: view, now: now)
        }
        statistics.presenceSubscribed.increment()
        perform(presence: actions, settings)
    }

    private func refreshSubscription(_ context: RequestContext, _ subscription: Subscription, event: EventHeader?) {
        let request = context.message
        guard request.fromTag == subscription.dialog.remoteTag, event?.package == subscription.package.rawValue,
              event?.id == subscription.dialog.eventID else {
            statistics.presenceRefused.increment()
            respond(to: context, status: 481, reason: "Subscription does not exist")
            return
        }
        let cseq = UInt32(truncatingIfNeeded: request.cseq?.number ?? 0)
        let now = clock()
        if cseq == subscription.dialog.remoteCSeq {
            respondSubscribed(context, expires: max(0, Int((subscription.expiresAt - now) / 1000)))
            return
        }
        guard cseq > subscription.dialog.remoteCSeq else {
            // RFC 3261 §12.2.2: a request older than the last one of the dialog.
            respond(to: context, status: 500, reason: "CSeq out of order")
            return
        }
        guard let expires = grantedExpires(context) else { return }
        respondSubscribed(context, expires: expires)
        let view = currentView(subscription.resource, watcher: subscription.watcher, context.snapshot, now: now) ?? .state(.unknown)
        var refreshed = subscription
        refreshed.dialog.remoteCSeq = cseq
        if let contact = request.headerValues("Contact").first.flatMap({ NameAddress(parsing: $0)?.uri }) {
            refreshed.dialog.remoteTarget = contact.description
        }
        refreshed.expiresAt = now + Int64(expires) * 1000
        let actions = presence.table.withLock { table in
            expires == 0 ? table.unsubscribe(subscription.id, remoteCSeq: cseq, view: view, now: now)
                         : table.subscribe(refreshed, view: view, now: now)
        }
        statistics.presenceRefreshed.increment()
        perform(presence: actions, context.settings)
    }

    /// The subscription length granted: the asked one within the limits, or nil after a 423.
    private func grantedExpires(_ context: RequestContext) -> Int? {
        let policy = context.settings.presence
        let asked = context.message.expires ?? policy.maxExpires
        if asked > 0 && asked < policy.minExpires {
            statistics.presenceRefused.increment()
            respond(to: context, status: 423, reason: "Interval Too Brief") { response in
                try response.addHeader("Min-Expires", String(policy.minExpires))
            }
            return nil
        }
        return min(max(asked, 0), policy.maxExpires)
    }

    private func respondSubscribed(_ context: RequestContext, expires: Int) {
        let contact = notifierContact(context.inbound.local, context.settings)
        respond(to: context, status: 200, reason: "OK") { response in
            try response.addHeader("Expires", String(expires))
            try response.addHeader("Contact", contact)
        }
    }

    /// Tandem's Contact in a subscription dialog: where refreshes come.
    func notifierContact(_ local: ListenPoint, _ settings: Settings) -> String {
        let address = advertised(local, settings)
        return local.transport == .udp ? "<sip:\(address)>" : "<sip:\(address);transport=\(local.transport.rawValue)>"
    }

    // MARK: Views

    /// What every watcher's view of one presentity is worked out from, read once per pass.
    struct PresentityFacts {
        var availability: Availability
        var registered: Bool
        var local: LocalTime
        /// A suspended account or a disabled user: nobody sees them reachable.
        var barred: Bool
    }

    /// nil when the presentity no longer exists.
    func presentityFacts(_ presentity: String, _ snapshot: RegistrySnapshot, now: Int64) -> PresentityFacts? {
        guard let user = snapshot.user(presentity)?.value else { return nil }
        let account = snapshot.account(user.accountID)?.value
        return PresentityFacts(availability: snapshot.availability(of: presentity)?.value ?? .standard(userID: presentity),
                               registered: location.bindings(userID: presentity).contains { $0.expiresAt > now },
                               local: LocalTime.at(now, zone: account?.timeZone ?? "UTC"),
                               barred: account?.status == .suspended || user.status == .disabled)
    }

    /// Who a watcher is, as availability lists name callers: their user id and the number a call from
    /// them would carry (`presentableNumbers`, as `assertedIdentity` picks it).
    func watcherIdentity(_ watcher: String, _ snapshot: RegistrySnapshot) -> CallerIdentity {
        CallerIdentity(number: snapshot.user(watcher).flatMap { snapshot.presentableNumbers(of: $0.value).first }, userID: watcher)
    }

    /// What `watcher` may see of `resource` now; nil when its user no longer exists.
    func currentView(_ resource: Resource, watcher: String, _ snapshot: RegistrySnapshot, now: Int64) -> SubscriptionView? {
        switch resource.package {
        case .presence:
            return presentityFacts(resource.user, snapshot, now: now).map {
                presenceView($0, presentity: resource.user, watcher: watcherIdentity(watcher, snapshot), now: now)
            }
        case .messageSummary:
            guard snapshot.user(resource.user) != nil else { return nil }
            return .messages(messageSummary(resource.user))
        case .watcherInfo:
            guard snapshot.user(resource.user) != nil else { return nil }
            return .watchers(presence.table.withLock { $0.watchers(of: resource.user) })
        }
    }

    /// A user's messages waiting as last reported; none when the file cannot be read (logged).
    func messageSummary(_ user: String) -> MessageSummary {
        do { return try registry.read { store throws(RegistryError) in try store.messageSummary(userID: user) } } catch {
            logger.warning("cannot read the messages waiting", [("user", user), ("reason", "\(error)")])
            return .none
        }
    }

    func presenceView(_ facts: PresentityFacts, presentity: String, watcher: CallerIdentity, now: Int64) -> SubscriptionView {
        if facts.barred { return .state(.unknown) }
        let availability = facts.availability
        if watcher.userID != presentity, watcher.isListed(in: availability.refused, lists: availability.lists) { return .rejected }
        let state = availability.connectabilityState(for: watcher, registered: facts.registered, now: now, local: facts.local)
        return state == .subjectToAuthorisation ? .pending : .state(state)
    }

    // MARK: Changes

    /// Starts the presence server's own work: the subscriptions stored by the last run come back,
    /// changes of bindings and of the registry mark their users, and once a second expiries, retries
    /// and — at each new minute — the time rules are looked at. Passes run on `queue`; nil runs them
    /// on the thread that asks (the timer's, in virtual time).
    public func startPresence(on queue: DispatchQueue?) {
        presence.queue.withLock { $0 = queue }
        restoreSubscriptions()
        location.onChange { [weak self] users in
            self?.presenceChanged(users)
            self?.registrationsChanged(users)
        }
        registry.onChange { [weak self] change in
            guard let self else { return }
            var users = change.users.union(change.availabilities)
            if !change.accounts.isEmpty {
                let snapshot = self.registry.snapshot
                for account in change.accounts { users.formUnion(snapshot.users(inAccount: account).map(\.value.id)) }
            }
            self.presenceChanged(users)
            // A deleted user's other subscriptions end too (`noresource`).
            self.changed(Set(change.users.flatMap { [Resource(.messageSummary, $0), Resource(.watcherInfo, $0)] }))
            if !change.messages.isEmpty { self.messagesChanged(change.messages) }
        }
        schedulePresenceTick()
    }

    private func schedulePresenceTick() {
        timers.schedule(newTimerID(), after: 1) { [weak self] in
            guard let self else { return }
            self.onPresenceQueue { self.presenceTick() }
            self.schedulePresenceTick()
        }
    }

    private func onPresenceQueue(_ body: @escaping @Sendable () -> Void) {
        if let queue = presence.queue.withLock({ $0 }) { queue.async(execute: body) } else { body() }
    }

    /// Expiries and retries; at a new minute, every watched presentity (time rules and overrides
    /// switch modes at minutes).
    func presenceTick() {
        let now = clock()
        let actions = presence.table.withLock { $0.tick(now: now) }
        perform(presence: actions, currentSettings)
        let minute = now / 60_000
        if presence.lastMinute.exchange(minute, ordering: .relaxed) != minute {
            changed(Set(presence.table.withLock { $0.resources(.presence) }))
        }
    }

    /// Marks users whose connectability may have changed; one pass works out their watchers' views.
    public func presenceChanged(_ users: Set<String>) {
        changed(Set(users.map { Resource(.presence, $0) }))
    }

    /// Marks users whose messages waiting changed: their subscribed phones, and with
    /// `presence.unsolicited_mwi` their registered ones, are told.
    func messagesChanged(_ users: Set<String>) {
        changed(Set(users.map { Resource(.messageSummary, $0) }))
        guard currentSettings.presence.unsolicitedMWI else { return }
        onPresenceQueue { for user in users.sorted() { self.sendUnsolicitedMWI(user, everyDevice: true) } }
    }

    /// Registrations changed: a device newly registered by a user with a mailbox hears of its
    /// messages at once when `presence.unsolicited_mwi` is on.
    private func registrationsChanged(_ users: Set<String>) {
        guard currentSettings.presence.unsolicitedMWI, !users.isEmpty else { return }
        onPresenceQueue { for user in users.sorted() { self.sendUnsolicitedMWI(user, everyDevice: false) } }
    }

    private func changed(_ resources: Set<Resource>) {
        // Most registrations are of users nobody watches: they cost one look-up and no pass.
        let resources = resources.isEmpty ? resources : presence.table.withLock { table in resources.filter(table.isWatched) }
        guard !resources.isEmpty else { return }
        let schedule = presence.dirty.withLock { dirty -> Bool in
            dirty.resources.formUnion(resources)
            guard !dirty.scheduled else { return false }
            dirty.scheduled = true
            return true
        }
        if schedule { onPresenceQueue { self.presencePass() } }
    }

    /// Works out the view of every watcher of every marked resource and notifies those it changed.
    func presencePass() {
        let resources = presence.dirty.withLock { dirty -> Set<Resource> in
            dirty.scheduled = false
            defer { dirty.resources.removeAll(keepingCapacity: true) }
            return dirty.resources
        }
        let snapshot = registry.snapshot
        let now = clock()
        let settings = currentSettings
        // A watcher's identity is read once per pass, whoever they watch.
        var identities: [String: CallerIdentity] = [:]
        for resource in resources.sorted() {
            let watchers = presence.table.withLock { table in
                table.ids(watching: resource).compactMap { id in table.subscription(id).map { (id, $0.watcher) } }
            }
            guard !watchers.isEmpty else { continue }
            guard snapshot.user(resource.user) != nil else {
                perform(presence: presence.table.withLock { $0.userGone(resource.user, now: now) }, settings)
                continue
            }
            var views: [String: SubscriptionView] = [:]
            switch resource.package {
            case .presence:
                guard let facts = presentityFacts(resource.user, snapshot, now: now) else { continue }
                for (_, watcher) in watchers where views[watcher] == nil {
                    let identity = identities[watcher] ?? watcherIdentity(watcher, snapshot)
                    identities[watcher] = identity
                    views[watcher] = presenceView(facts, presentity: resource.user, watcher: identity, now: now)
                }
            case .messageSummary, .watcherInfo:
                // The user alone watches these: one view for every subscription.
                guard let view = currentView(resource, watcher: resource.user, snapshot, now: now) else { continue }
                for (_, watcher) in watchers { views[watcher] = view }
            }
            let actions = presence.table.withLock { table in
                watchers.flatMap { id, watcher in table.update(id, view: views[watcher]!, now: now) }
            }
            perform(presence: actions, settings)
        }
    }

    /// A NOTIFY's answer.
    func presenceAnswered(_ id: SubscriptionID, cseq: UInt32, status: Int) {
        if status >= 300 { statistics.presenceNotifyFailures.increment() }
        let actions = presence.table.withLock { $0.answered(id, cseq: cseq, status: status, now: clock()) }
        perform(presence: actions, currentSettings)
    }

    // MARK: Carrying out

    func perform(presence actions: [SubscriptionTable.Action], _ settings: Settings) {
        for action in actions {
            switch action {
            case .store(let subscription): presence.store?.save(Self.stored(subscription))
            case .remove(let id): presence.store?.delete(id.rawValue)
            case .notify(let notify): sendNotify(notify, settings)
            }
        }
    }

    /// Builds a NOTIFY (RFC 6665 §4.2.1, RFC 3261 §12.2.1.1) and sends it in a client transaction of
    /// its own; its answer comes back as `notifyAnswered`.
    private func sendNotify(_ notify: SubscriptionNotify, _ settings: Settings) {
        let dialog = notify.dialog
        let connection = presence.table.withLock { $0.subscription(notify.id)?.connection }
        var destination: Destination?
        if let first = dialog.routeSet.first, let route = NameAddress(parsing: first)?.uri {
            destination = resolve(route)
        } else if let point = try? ListenPoint(parsing: dialog.destination) {
            destination = Destination(transport: point.transport, address: point.address, connection: connection.map(ConnectionID.init),
                                      local: try? ListenPoint(parsing: dialog.local))
        }
        guard let destination else {
            statistics.sendErrors.increment()
            presenceAnswered(notify.id, cseq: notify.cseq, status: 503)
            return
        }
        var body: (text: String, type: String)?
        switch notify.body {
        case .state(let state)?: body = (PresenceDocument.render(entity: dialog.localURI, state: state), PresenceDocument.contentType)
        case .messages(let summary)?: body = (MessageSummaryDocument.render(summary), MessageSummaryDocument.contentType)
        case .watchers(let list)?:
            // RFC 3858 §4.2: each NOTIFY of the subscription a higher version, from 0.
            body = (WatcherInfoDocument.render(resource: dialog.localURI, watchers: list, version: notify.cseq &- 1), WatcherInfoDocument.contentType)
        case .pending?, .rejected?, nil: body = nil
        }
        // A terminating NOTIFY's answer concerns no subscription any more.
        var awaited: (SubscriptionID, UInt32)? = (notify.id, notify.cseq)
        if case .terminated = notify.state { awaited = nil }
        let sent = sendNotifyRequest(to: dialog.remoteTarget, via: destination, routes: dialog.routeSet,
                                     from: "<\(dialog.localURI)>;tag=\(dialog.localTag)", to: "<\(dialog.remoteURI)>;tag=\(dialog.remoteTag)",
                                     callID: dialog.callID, cseq: notify.cseq,
                                     event: notify.package.rawValue + (dialog.eventID.map { ";id=\($0)" } ?? ""),
                                     state: notify.state.headerValue, body: body, awaited: awaited, settings)
        if !sent { presenceAnswered(notify.id, cseq: notify.cseq, status: 500) }
    }

    /// Sends one NOTIFY in a client transaction of its own (RFC 3261 §17.1.2); false when it cannot
    /// be built (logged).
    private func sendNotifyRequest(to target: String, via destination: Destination, routes: [String], from: String, to: String,
                                   callID: String, cseq: UInt32, event: String, state: String, body: (text: String, type: String)?,
                                   awaited: (SubscriptionID, UInt32)?, _ settings: Settings) -> Bool {
        let local = destination.local ?? localPoint(for: destination, settings)
        let shard = proxy.shard(callID: callID)
        let branch = "z9hG4bK" + "Tn" + String(branchCounter.wrappingAdd(1, ordering: .relaxed).newValue, radix: 36) + "." + tag([callID, String(cseq)])
        var headers: [(name: String, value: String)] = [
            ("Via", viaValue(local, branch: branch, settings)), ("Max-Forwards", "70"),
        ]
        headers += routes.map { ("Route", $0) }
        headers += [
            ("From", from), ("To", to), ("Call-ID", callID), ("CSeq", "\(cseq) NOTIFY"), ("Contact", notifierContact(local, settings)),
            ("Event", event), ("Subscription-State", state),
        ]
        if !settings.serverHeader.isEmpty { headers.append(("User-Agent", settings.serverHeader)) }
        let bytes: [UInt8]
        do {
            bytes = try SIPMessage.request(method: "NOTIFY", uri: target, headers: headers, body: body?.text, contentType: body?.type).serialized()
        } catch {
            statistics.sendErrors.increment()
            logger.warning("cannot build NOTIFY", [("call_id", callID), ("target", target), ("reason", "\(error)")])
            return false
        }
        let key = ClientKey(branch: branch, method: .notify, shard: shard)
        let effects = proxy.withLock(shard) { state -> [ProxyEffect] in
            var tx = ClientTransaction(isInvite: false, reliable: destination.transport == .tcp, timers: settings.timers)
            let actions = tx.start()
            var record = ClientRecord(tx: tx, destination: destination, request: bytes, context: nil, branchIndex: 0)
            record.notify = awaited
            state.clients[key] = record
            return clientEffects(actions, key, &state, response: nil)
        }
        statistics.presenceNotifies.increment()
        perform(effects, settings)
        return true
    }

    /// Unsolicited `message-summary` NOTIFYs (as Asterisk's and many phones' voicemail do it) to the
    /// user's registered devices that hold no subscription for it: all of them when the counts
    /// changed, only those not told yet when registrations changed. A user never given a count
    /// gets none. Each NOTIFY is outside any dialog; its answer is not awaited.
    func sendUnsolicitedMWI(_ user: String, everyDevice: Bool) {
        let settings = currentSettings
        let now = clock()
        let bindings = location.bindings(userID: user).filter { $0.expiresAt > now }
        let contacts = Set(bindings.map(\.contact))
        let told = presence.unsolicited.withLock { sent -> Set<String> in
            let told = sent[user] ?? []
            if contacts.isEmpty { sent[user] = nil } else { sent[user] = contacts }
            return told
        }
        let fresh = everyDevice ? bindings : bindings.filter { !told.contains($0.contact) }
        guard !fresh.isEmpty else { return }
        let summary = messageSummary(user)
        if !everyDevice, summary == .none { return }
        let subscribed = presence.table.withLock { table in
            Set(table.ids(watching: Resource(.messageSummary, user)).compactMap { table.subscription($0)?.dialog.remoteTarget })
        }
        let body = (MessageSummaryDocument.render(summary), MessageSummaryDocument.contentType)
        let name = registry.snapshot.user(user)?.value.sipUsername ?? user
        for binding in fresh where !subscribed.contains(binding.contact) {
            guard let target = forwardTarget(binding), let destination = target.destination ?? resolve(target.nextHop) else { continue }
            // The user's address of record at the address the device registered with.
            let aor = "<sip:\(name)@\(advertised(destination.local ?? localPoint(for: destination, settings), settings))>"
            let callID = tag([user, binding.contact, String(now)]) + "@mwi"
            _ = sendNotifyRequest(to: binding.contact, via: destination, routes: target.routes, from: aor + ";tag=" + tag([callID]), to: aor,
                                  callID: callID, cseq: 1, event: EventPackage.messageSummary.rawValue, state: "active", body: body,
                                  awaited: nil, settings)
            statistics.mwiUnsolicited.increment()
        }
    }

    // MARK: Storage

    /// Subscriptions restart far above the last stored NOTIFY sequence: NOTIFYs sent after the row was
    /// written (it is not rewritten for each) must not be outnumbered (RFC 3261 §12.2.1.1).
    static let restartCSeqStep: UInt32 = 100_000

    private func restoreSubscriptions() {
        guard let store = presence.store else { return }
        let now = clock()
        let rows: [StoredSubscription]
        do { rows = try store.load(now: now) } catch {
            logger.error("cannot load the presence subscriptions", [("reason", "\(error)")])
            return
        }
        var restored = 0
        presence.table.withLock { table in
            for row in rows {
                guard let subscription = Self.subscription(row) else { continue }
                table.restore(subscription)
                restored += 1
            }
        }
        if restored > 0 {
            logger.info("presence subscriptions restored", [("count", String(restored))])
            changed(Set(rows.compactMap { row in EventPackage(rawValue: row.event).map { Resource($0, row.presentity) } }))
        }
    }

    static func stored(_ subscription: Subscription) -> StoredSubscription {
        let dialog = subscription.dialog
        let json: JSONValue = [
            "call_id": .string(dialog.callID), "local_tag": .string(dialog.localTag), "remote_tag": .string(dialog.remoteTag),
            "local_uri": .string(dialog.localURI), "remote_uri": .string(dialog.remoteURI), "remote_target": .string(dialog.remoteTarget),
            "route_set": JSONValue(dialog.routeSet), "destination": .string(dialog.destination), "local": .string(dialog.local),
            "event_id": dialog.eventID.map { .string($0) } ?? .null, "remote_cseq": .integer(Int64(dialog.remoteCSeq)),
        ]
        return StoredSubscription(id: subscription.id.rawValue, presentity: subscription.presentity, watcher: subscription.watcher,
                                  event: subscription.package.rawValue, dialog: json.description, localCSeq: Int64(subscription.localCSeq),
                                  expiresAt: subscription.expiresAt)
    }

    static func subscription(_ row: StoredSubscription) -> Subscription? {
        guard let package = EventPackage(rawValue: row.event), let json = try? JSONValue.parse(row.dialog), let object = json.objectValue else { return nil }
        func text(_ key: String) -> String? { object[key]?.stringValue }
        guard let callID = text("call_id"), let localTag = text("local_tag"), let remoteTag = text("remote_tag"),
              let localURI = text("local_uri"), let remoteURI = text("remote_uri"), let target = text("remote_target"),
              let destination = text("destination"), let local = text("local") else { return nil }
        let dialog = NotifierDialog(callID: callID, localTag: localTag, remoteTag: remoteTag, localURI: localURI, remoteURI: remoteURI,
                                    remoteTarget: target, routeSet: object["route_set"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                    destination: destination, local: local, eventID: text("event_id"),
                                    remoteCSeq: UInt32(truncatingIfNeeded: object["remote_cseq"]?.integerValue ?? 0))
        return Subscription(package: package, presentity: row.presentity, watcher: row.watcher, dialog: dialog, expiresAt: row.expiresAt,
                            localCSeq: UInt32(truncatingIfNeeded: row.localCSeq) &+ restartCSeqStep)
    }

    /// The subscriptions watching `user` or held by them (all when nil), for `presence.subscriptions`.
    public func presenceSubscriptions(of user: String?) -> [JSONValue] {
        let held = presence.table.withLock { table in
            table.subscriptions.values.filter { user == nil || $0.presentity == user || $0.watcher == user }
        }
        return held.sorted { $0.id < $1.id }.map { subscription in
            let shown: JSONValue = switch subscription.acknowledged {
            case .state(let state)?: .string(state.rawValue)
            case .pending?: "pending"
            case .messages(let summary)?: .string("\(summary.newMessages)/\(summary.oldMessages)")
            case .watchers(let list)?: JSONValue(list.count)
            case .rejected?, nil: .null
            }
            return ["id": .string(subscription.id.rawValue), "event": .string(subscription.package.rawValue), "presentity": .string(subscription.presentity),
                    "watcher": .string(subscription.watcher), "expires_at": .string(Timestamp.rfc3339(milliseconds: subscription.expiresAt)),
                    "shown": shown, "waiting": .bool(subscription.isWaiting)]
        }
    }

    /// Subscriptions held, and resources watched, all packages together (`stats.get`).
    public var presenceCounts: (subscriptions: Int, presentities: Int) {
        presence.table.withLock { ($0.count, $0.resourceCount) }
    }
}
