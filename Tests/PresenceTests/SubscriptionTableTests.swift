import RegistryModel
import Routing
import Testing
@testable import Presence

@Suite struct SubscriptionTableTests {
    static let start: Int64 = 1_795_000_000_000

    func subscription(_ n: Int, presentity: String = "alice", expires: Int64 = 3600) -> Subscription {
        let dialog = NotifierDialog(callID: "call-\(n)", localTag: "t\(n)", remoteTag: "r\(n)", localURI: "sip:\(presentity)@tandem.test",
                                    remoteURI: "sip:bob@tandem.test", remoteTarget: "sip:bob@192.0.2.7:5062", routeSet: [],
                                    destination: "udp:192.0.2.7:5062", local: "udp:127.0.0.1:5060", eventID: nil, remoteCSeq: 1)
        return Subscription(presentity: presentity, watcher: "bob", dialog: dialog, expiresAt: Self.start + expires * 1000, localCSeq: 0)
    }

    func notifies(_ actions: [SubscriptionTable.Action]) -> [SubscriptionNotify] {
        actions.compactMap { if case .notify(let notify) = $0 { notify } else { nil } }
    }

    @Test func aSubscriptionIsStoredAndNotifiedAtOnce() {
        var table = SubscriptionTable()
        let actions = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        #expect(actions.first == .store(table.subscription(SubscriptionID(callID: "call-1", localTag: "t1"))!))
        let sent = notifies(actions)
        #expect(sent.count == 1)
        #expect(sent[0].cseq == 1)
        #expect(sent[0].state == .active(expires: 3600))
        #expect(sent[0].shown == .connectable)
    }

    /// RFC 3856 §6.10: changes during a NOTIFY's flight are coalesced; the next NOTIFY carries the
    /// newest state only, and none goes while one is unanswered.
    @Test func aBurstEndsWithTheNewestStateOnly() {
        var table = SubscriptionTable()
        let id = subscription(1).id
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        #expect(notifies(table.update(id, view: .state(.notConnectable), now: Self.start)).isEmpty)
        #expect(notifies(table.update(id, view: .state(.inTransfer), now: Self.start)).isEmpty)
        #expect(notifies(table.update(id, view: .state(.unknown), now: Self.start)).isEmpty)
        let next = notifies(table.answered(id, cseq: 1, status: 200, now: Self.start + 50))
        #expect(next.map(\.shown) == [.unknown])
        #expect(next.map(\.cseq) == [2])
        // The same state again sends nothing; an answer to an old CSeq changes nothing.
        #expect(table.answered(id, cseq: 1, status: 200, now: Self.start + 60).isEmpty)
        _ = table.answered(id, cseq: 2, status: 200, now: Self.start + 60)
        #expect(table.update(id, view: .state(.unknown), now: Self.start + 70).isEmpty)
        // Back to a state sent before: it is sent again (the watcher holds `unknown`).
        #expect(notifies(table.update(id, view: .state(.connectable), now: Self.start + 80)).map(\.cseq) == [3])
    }

    /// One failed NOTIFY does not end a subscription: the newest view is sent again after a back-off.
    @Test func aTimeoutIsRetriedNotFatal() {
        var table = SubscriptionTable()
        let id = subscription(1).id
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        #expect(table.answered(id, cseq: 1, status: 408, now: Self.start + 32_000).isEmpty)
        #expect(table.subscription(id) != nil)
        _ = table.update(id, view: .state(.notConnectable), now: Self.start + 33_000)
        #expect(notifies(table.tick(now: Self.start + 36_000)).isEmpty)
        let retried = notifies(table.tick(now: Self.start + 37_000))
        #expect(retried.map(\.shown) == [.notConnectable])
        #expect(retried.map(\.cseq) == [2])
        #expect(SubscriptionTable.retryDelay(failures: 1) == 5_000)
        #expect(SubscriptionTable.retryDelay(failures: 3) == 20_000)
        #expect(SubscriptionTable.retryDelay(failures: 9) == 60_000)
    }

    @Test(arguments: [481, 489, 404, 603])
    func aDefinitiveRefusalEndsIt(_ status: Int) {
        var table = SubscriptionTable()
        let id = subscription(1).id
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        #expect(table.answered(id, cseq: 1, status: status, now: Self.start + 10) == [.remove(id)])
        #expect(table.count == 0)
        #expect(table.ids(watching: Resource(.presence, "alice")).isEmpty)
    }

    /// RFC 6665 §4.2.2: at expiry the watcher gets a last NOTIFY, terminated;reason=timeout; no
    /// NOTIFY follows, whatever changes.
    @Test func expiryTerminatesAndNothingFollows() {
        var table = SubscriptionTable()
        let id = subscription(1, expires: 60).id
        _ = table.subscribe(subscription(1, expires: 60), view: .state(.connectable), now: Self.start)
        _ = table.answered(id, cseq: 1, status: 200, now: Self.start + 10)
        #expect(table.tick(now: Self.start + 59_000).isEmpty)
        let last = table.tick(now: Self.start + 60_000)
        #expect(notifies(last).map(\.state) == [.terminated(reason: "timeout")])
        #expect(notifies(last).map(\.shown) == [.connectable])
        #expect(last.last == .remove(id))
        #expect(table.update(id, view: .state(.unknown), now: Self.start + 61_000).isEmpty)
        #expect(table.tick(now: Self.start + 120_000).isEmpty)
    }

    @Test func aRefreshExtendsAndNotifiesAgain() {
        var table = SubscriptionTable()
        var sub = subscription(1, expires: 60)
        _ = table.subscribe(sub, view: .state(.connectable), now: Self.start)
        _ = table.answered(sub.id, cseq: 1, status: 200, now: Self.start + 10)
        sub.expiresAt = Self.start + 110_000
        sub.dialog.remoteCSeq = 2
        let refreshed = notifies(table.subscribe(sub, view: .state(.connectable), now: Self.start + 50_000))
        #expect(refreshed.map(\.state) == [.active(expires: 60)])
        #expect(refreshed.map(\.cseq) == [2])
        _ = table.answered(sub.id, cseq: 2, status: 200, now: Self.start + 50_010)
        #expect(table.tick(now: Self.start + 60_000).isEmpty)
        #expect(notifies(table.tick(now: Self.start + 110_000)).map(\.state) == [.terminated(reason: "timeout")])
    }

    @Test func pendingThenAuthorisedThenRefused() {
        var table = SubscriptionTable()
        let id = subscription(1).id
        let first = notifies(table.subscribe(subscription(1), view: .pending, now: Self.start))
        #expect(first.map(\.state) == [.pending(expires: 3600)])
        #expect(first[0].shown == nil)
        _ = table.answered(id, cseq: 1, status: 200, now: Self.start + 10)
        #expect(notifies(table.update(id, view: .state(.connectable), now: Self.start + 20)).map(\.state) == [.active(expires: 3600)])
        _ = table.answered(id, cseq: 2, status: 200, now: Self.start + 30)
        let refused = table.update(id, view: .rejected, now: Self.start + 40)
        #expect(notifies(refused).map(\.state) == [.terminated(reason: "rejected")])
        #expect(notifies(refused)[0].shown == nil)
        #expect(table.count == 0)
    }

    @Test func unsubscribeSendsTheStateAndEnds() {
        var table = SubscriptionTable()
        let id = subscription(1).id
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        let actions = table.unsubscribe(id, remoteCSeq: 2, view: .state(.notConnectable), now: Self.start + 10)
        #expect(notifies(actions).map(\.state) == [.terminated(reason: "timeout")])
        #expect(notifies(actions).map(\.shown) == [.notConnectable])
        #expect(actions.last == .remove(id))
    }

    @Test func restoredSubscriptionsAreOwedTheCurrentState() {
        var table = SubscriptionTable()
        var sub = subscription(1)
        sub.localCSeq = 100_007
        table.restore(sub)
        let sent = notifies(table.update(sub.id, view: .state(.unknown), now: Self.start))
        #expect(sent.map(\.cseq) == [100_008])
        #expect(table.ids(watching: Resource(.presence, "alice")) == [sub.id])
    }

    @Test func documentsCarryTheStateAndEscapeTheEntity() {
        let xml = PresenceDocument.render(entity: "sip:a&b@tandem.test", state: .notConnectable)
        #expect(xml.contains("entity=\"sip:a&amp;b@tandem.test\""))
        #expect(xml.contains("<basic>closed</basic>"))
        #expect(xml.contains("<rpid:busy/>"))
        #expect(xml.contains("<c:connectability>not_connectable</c:connectability>"))
        let open = PresenceDocument.render(entity: "sip:alice@tandem.test", state: .connectable)
        #expect(open.contains("<basic>open</basic>"))
        #expect(!open.contains("rpid:activities"))
    }
}

extension SubscriptionTableTests {
    @Test func countsPerWatcher() {
        var table = SubscriptionTable()
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start)
        _ = table.subscribe(subscription(2, presentity: "carol"), view: .state(.connectable), now: Self.start)
        // A refresh is not a new subscription.
        _ = table.subscribe(subscription(1), view: .state(.connectable), now: Self.start + 10)
        #expect(table.count(heldBy: "bob") == 2)
        _ = table.unsubscribe(subscription(1).id, remoteCSeq: 2, view: .state(.connectable), now: Self.start + 20)
        #expect(table.count(heldBy: "bob") == 1)
        _ = table.answered(subscription(2).id, cseq: 1, status: 481, now: Self.start + 30)
        #expect(table.count(heldBy: "bob") == 0)
    }
}

/// Watcher information (RFC 3857) and message summaries (RFC 3842) in the same table.
extension SubscriptionTableTests {
    func own(_ n: Int, _ package: EventPackage) -> Subscription {
        var own = subscription(n)
        own.package = package
        own.watcher = "alice"
        return own
    }

    func lists(_ actions: [SubscriptionTable.Action]) -> [[WatcherEntry]] {
        notifies(actions).compactMap { if case .watchers(let list)? = $0.body { list } else { nil } }
    }

    @Test func watcherInfoFollowsThePresenceWatchers() {
        var table = SubscriptionTable()
        let winfo = own(9, .watcherInfo)
        #expect(lists(table.subscribe(winfo, view: .watchers(table.watchers(of: "alice")), now: Self.start)) == [[]])
        _ = table.answered(winfo.id, cseq: 1, status: 200, now: Self.start)
        // A pending watcher comes: Alice's list shows them pending.
        let arrived = lists(table.subscribe(subscription(1), view: .pending, now: Self.start + 10))
        #expect(arrived.map { $0.map(\.status) } == [[.pending]])
        #expect(arrived.first?.first?.uri == "sip:bob@tandem.test")
        _ = table.answered(winfo.id, cseq: 2, status: 200, now: Self.start + 10)
        // A change of state that is not of authorisation does not touch the list.
        _ = table.answered(subscription(1).id, cseq: 1, status: 200, now: Self.start + 11)
        #expect(lists(table.update(subscription(1).id, view: .pending, now: Self.start + 12)).isEmpty)
        // Authorised: active, approved.
        let approved = lists(table.update(subscription(1).id, view: .state(.connectable), now: Self.start + 20))
        #expect(approved.map { $0.map(\.event) } == [["approved"]])
        _ = table.answered(winfo.id, cseq: 3, status: 200, now: Self.start + 20)
        #expect(lists(table.update(subscription(1).id, view: .state(.notConnectable), now: Self.start + 30)).isEmpty)
        // A watcher who never was pending is `subscribe`.
        let second = lists(table.subscribe(subscription(2), view: .state(.connectable), now: Self.start + 40))
        #expect(second.map { $0.map(\.event) } == [["approved", "subscribe"]])
        _ = table.answered(winfo.id, cseq: 4, status: 200, now: Self.start + 40)
        // A watcher whose NOTIFY is refused for good leaves the list; a watcher's winfo
        // subscription is no presence watcher of anyone.
        let gone = lists(table.answered(subscription(2).id, cseq: 1, status: 481, now: Self.start + 50))
        #expect(gone.map { $0.map(\.id) } == [[subscription(1).id.rawValue]])
        #expect(table.watchers(of: "alice").count == 1)
        // Alice's own subscriptions end with her (`noresource`), every package.
        let ended = notifies(table.userGone("alice", now: Self.start + 60))
        #expect(Set(ended.map(\.package)) == [.presence, .watcherInfo])
        #expect(ended.allSatisfy { $0.state == .terminated(reason: "noresource") })
        #expect(table.count == 0)
    }

    @Test func messageSummariesAreViewsLikeAnyOther() {
        var table = SubscriptionTable()
        let mwi = own(1, .messageSummary)
        let first = notifies(table.subscribe(mwi, view: .messages(.none), now: Self.start))
        #expect(first.map(\.package) == [.messageSummary])
        #expect(first.first?.body == .messages(.none))
        let two = MessageSummary(newMessages: 2, oldMessages: 1)
        #expect(notifies(table.update(mwi.id, view: .messages(two), now: Self.start + 1)).isEmpty)
        let next = notifies(table.answered(mwi.id, cseq: 1, status: 200, now: Self.start + 2))
        #expect(next.map(\.body) == [.messages(two)])
        // Presence watchers of Alice are not in a message summary's resource.
        #expect(table.ids(watching: Resource(.presence, "alice")).isEmpty)
        #expect(table.isWatched(Resource(.messageSummary, "alice")))
    }

    @Test func messageSummaryBodies() {
        #expect(MessageSummaryDocument.render(.none) == "Messages-Waiting: no\r\nVoice-Message: 0/0 (0/0)\r\n")
        let summary = MessageSummary(newMessages: 3, oldMessages: 7, urgentNew: 1, urgentOld: 2, account: "sip:vm@tandem.test")
        #expect(MessageSummaryDocument.render(summary) == "Messages-Waiting: yes\r\nMessage-Account: sip:vm@tandem.test\r\nVoice-Message: 3/7 (1/2)\r\n")
        let xml = WatcherInfoDocument.render(resource: "sip:a@t", watchers: [
            WatcherEntry(id: "c;t", watcher: "bob", uri: "sip:b<o>b@t", status: .pending, event: "subscribe"),
        ], version: 4)
        #expect(xml.contains("version=\"4\" state=\"full\""))
        #expect(xml.contains("<watcher id=\"c;t\" status=\"pending\" event=\"subscribe\">sip:b&lt;o&gt;b@t</watcher>"))
    }
}
