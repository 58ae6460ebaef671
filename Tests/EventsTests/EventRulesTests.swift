import Crypto
import JSON
import Testing
@testable import Events
@testable import Registry

@Suite struct EventRulesTests {
    func event(_ id: Int, _ type: String = "call.ended") -> RegistryEvent {
        RegistryEvent(id: id, time: "2026-11-22T10:00:00.000Z", type: type, source: "gateway", subject: nil, payload: "{}")
    }

    @Test func patternsMatchTypesAndFamilies() throws {
        #expect(try EventPattern("call.*").matches("call.ended"))
        #expect(try !EventPattern("call.*").matches("callx.ended"))
        #expect(try EventPattern("*").matches("anything.at_all"))
        #expect(try EventPattern("gauge.updated").matches("gauge.updated"))
        #expect(try !EventPattern("gauge.updated").matches("gauge.exceeded"))
        for bad in ["", "Call.ended", "call..ended", ".call", "call.", "call.*.x", "call ended", "*.ended"] {
            #expect(throws: RegistryError.self, "\(bad)") { try EventPattern(bad) }
        }
        #expect(try EventPattern.list(nil).map(\.text) == ["*"])
        #expect(try EventPattern.list([]).map(\.text) == ["*"])
    }

    @Test func aFullQueueClosesWithTheCursorToPullAfter() throws {
        var queue = PushQueue(capacity: 2)
        #expect(queue.offer(event(5), subscription: 9) == .queued)
        queue.mark(5)
        queue.mark(6)
        #expect(queue.count == 2)
        #expect(queue.offer(event(7), subscription: 9) == .queued)
        #expect(queue.freeSpace == 0)
        #expect(queue.offer(event(8), subscription: 9) == .overflowed(cursor: 7))
        #expect(queue.offer(event(9), subscription: 9) == .closed)
        #expect(queue.take() == .event(event(5)))
        #expect(queue.take() == .mark(6))
        #expect(queue.take() == .event(event(7)))
        guard case .notice(let method, let params)? = queue.take() else { Issue.record("no overflow notice"); return }
        #expect(method == "events.overflow")
        #expect(params["cursor"] == 7 && params["subscription"] == 9)
        #expect(queue.take() == nil)
        #expect(queue.isClosed)
    }

    @Test func theLastEmitterLeavingMakesATypeUnavailable() throws {
        var directory = ServiceDirectory()
        let consumer = ServiceRegistration(name: "crm", connection: 1, eventsConsumed: [try EventPattern("transcript.ready")])
        #expect(try directory.register(consumer) == [])
        #expect(!directory.isAvailable("transcript.ready"))
        #expect(directory.isAvailable("call.ended"))
        #expect(directory.emitters(of: "call.ended") == ["tandem"])

        let first = ServiceRegistration(name: "scribe-a", connection: 2, eventsProvided: ["transcript.ready", "transcript.failed"])
        #expect(try directory.register(first) == [.available(type: "transcript.failed", service: "scribe-a"),
                                                 .available(type: "transcript.ready", service: "scribe-a")])
        let second = ServiceRegistration(name: "scribe-b", connection: 3, eventsProvided: ["transcript.ready"])
        #expect(try directory.register(second) == [])
        #expect(directory.emitters(of: "transcript.ready") == ["scribe-a", "scribe-b"])
        #expect(throws: ServiceDirectory.Refusal.nameTaken("scribe-b")) { try directory.register(ServiceRegistration(name: "scribe-b", connection: 4)) }

        // Re-registering with less drops what only it emitted.
        #expect(try directory.register(ServiceRegistration(name: "scribe-a", connection: 2, eventsProvided: ["transcript.ready"]))
                == [.unavailable(type: "transcript.failed", service: "scribe-a")])
        #expect(directory.connectionClosed(2) == [])
        #expect(directory.connectionClosed(3) == [.unavailable(type: "transcript.ready", service: "scribe-b")])
        #expect(directory.unregister("crm", connection: 9) == nil)
        #expect(directory.unregister("crm", connection: 1) == [])
        // Tandem's own types never come and go with services.
        #expect(try directory.register(ServiceRegistration(name: "echo", connection: 5, eventsProvided: ["call.ended"])) == [])
    }

    @Test func retriesDoubleUpToTheMaximumThenGiveUp() {
        let schedule = RetrySchedule(initial: 1_000, maximum: 5_000, attempts: 5)
        #expect(schedule.afterFailure(attempt: 1, status: 500, error: "HTTP 500", now: 0) == .failed(status: 500, error: "HTTP 500", retryAt: 1_000))
        #expect(schedule.afterFailure(attempt: 2, status: nil, error: "refused", now: 10) == .failed(status: nil, error: "refused", retryAt: 2_010))
        #expect(schedule.afterFailure(attempt: 3, status: nil, error: "x", now: 0) == .failed(status: nil, error: "x", retryAt: 4_000))
        #expect(schedule.afterFailure(attempt: 4, status: nil, error: "x", now: 0) == .failed(status: nil, error: "x", retryAt: 5_000))
        #expect(schedule.afterFailure(attempt: 5, status: 503, error: "x", now: 0) == .failed(status: 503, error: "x", retryAt: nil))
    }

    @Test func aProviderSeesOnlyItsOwnPartOfACall() throws {
        let payload = try JSONValue.parse("""
            {"cdr_id": 7, "call_id": "c1", "destination": "+33612345678", "caller_number": "+33100000000", "disposition": "answered",
             "sip_code": 200, "start_time": "s", "end_time": "e", "billable_ms": 61000,
             "apps": [{"app_id": "screen", "provider_id": "screenco", "subscriber_id": "SC-1"},
                      {"app_id": "record", "provider_id": "recco", "subscriber_id": "alice@smith.example"}]}
            """)
        #expect(WebhookRouting.providers(of: "call.ended", payload: payload) == ["screenco", "recco"])
        #expect(WebhookRouting.providers(of: "call.incoming", payload: payload) == [])
        #expect(WebhookRouting.providers(of: "number.provider_switched", payload: ["from": "a", "to": "b"]) == ["a", "b"])
        #expect(WebhookRouting.providers(of: "app.activated", payload: ["provider": "vm"]) == ["vm"])

        let event = RegistryEvent(id: 42, time: "t", type: "call.ended", source: "gateway", subject: "+33612345678", payload: payload.description)
        var recco = Provider(id: "recco", name: "RecCo", kind: .app, hops: [], trustedSources: [], idScheme: .email, domain: nil, webhookURL: nil,
                             currency: "EUR", ratePerMinute: 0, monthlyFee: 0, createdAt: "", updatedAt: "")
        let body = WebhookRouting.body(of: event, payload: payload, for: recco)
        #expect(body["id"] == 42 && body["type"] == "call.ended" && body["provider"] == "recco")
        #expect(body["data"]?["apps"] == [["app_id": "record", "subscriber_id": "alice@smith.example"]])
        #expect(body["data"]?["number"] == nil && body["data"]?["caller_number"] == nil)
        #expect(body["data"]?["billable_ms"] == 61000)
        recco.idScheme = .tn
        #expect(WebhookRouting.body(of: event, payload: payload, for: recco)["data"]?["number"] == "+33612345678")
    }

    @Test func signaturesVerifyAndTamperingIsCaught() {
        let body = Array(#"{"id":1}"#.utf8)
        let header = WebhookSignature.value(secret: "0123456789abcdef", seconds: 1_795_300_000, body: body)
        #expect(header.hasPrefix("t=1795300000,v1="))
        // HMAC-SHA256 over "t.body", as a receiver computes it.
        let expected = Hex.encode(HMAC.sha256(key: Array("0123456789abcdef".utf8), message: Array("1795300000.{\"id\":1}".utf8)))
        #expect(header == "t=1795300000,v1=\(expected)")
        #expect(WebhookSignature.verify(header, secret: "0123456789abcdef", body: body))
        #expect(!WebhookSignature.verify(header, secret: "0123456789abcdeX", body: body))
        #expect(!WebhookSignature.verify(header, secret: "0123456789abcdef", body: Array(#"{"id":2}"#.utf8)))
        #expect(!WebhookSignature.verify("t=1795300001" + header.dropFirst(12), secret: "0123456789abcdef", body: body))
    }

    @Test func webhookAddresses() {
        #expect(WebhookTarget("http://hooks.example.net/in?x=1") == WebhookTarget(host: "hooks.example.net", port: 80, path: "/in?x=1"))
        #expect(WebhookTarget("http://127.0.0.1:8080") == WebhookTarget(host: "127.0.0.1", port: 8080, path: "/"))
        #expect(WebhookTarget("http://[::1]:9000/h")?.hostHeader == "[::1]:9000")
        #expect(WebhookTarget("https://hooks.example.net/") == nil)
        #expect(WebhookTarget("hooks.example.net") == nil)
    }
}
