import Dispatch
import Foundation
import JSON
import Registry
import Synchronization

/// Delivers one recipient's webhook events, oldest first, one at a time: a failure is retried on
/// the `RetrySchedule` before anything newer is sent, so a provider sees its events in order.
final class WebhookWorker: Sendable {
    let recipient: String
    let providerID: String
    /// Strong: a worker may be in the middle of an attempt when the dispatcher is stopped and let go.
    let dispatcher: EventDispatcher
    private let signal = WakeSignal()
    private let stopped = Atomic<Bool>(false)

    init(recipient: String, dispatcher: EventDispatcher) {
        self.recipient = recipient
        self.providerID = String(recipient.dropFirst("provider:".count))
        self.dispatcher = dispatcher
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "webhook"
        thread.start()
    }

    func wake() { signal.signal() }

    func stop() {
        stopped.store(true, ordering: .releasing)
        signal.signal()
    }

    private func run() {
        let registry = dispatcher.registry
        while !stopped.load(ordering: .acquiring) {
            let next: (EventDelivery, RegistryEvent)?
            do {
                next = try registry.read { store throws(RegistryError) in try store.nextDelivery(recipient: recipient) }
            } catch {
                dispatcher.log("cannot read webhook deliveries", [("recipient", recipient), ("reason", error.description)])
                signal.wait(milliseconds: 1_000)
                continue
            }
            guard let (delivery, event) = next else {
                signal.wait(milliseconds: 30_000)
                continue
            }
            let now = dispatcher.clock()
            if delivery.nextAttempt > now {
                signal.wait(milliseconds: Int(min(delivery.nextAttempt - now, 30_000)))
                continue
            }
            let outcome = attempt(delivery, event)
            switch outcome {
            case .delivered: dispatcher.counters.webhookDelivered.add(1, ordering: .relaxed)
            case .failed(_, let error, let retryAt):
                dispatcher.counters.webhookFailedAttempts.add(1, ordering: .relaxed)
                if retryAt == nil {
                    dispatcher.counters.webhookGivenUp.add(1, ordering: .relaxed)
                    dispatcher.log("webhook delivery given up", [("recipient", recipient), ("event", String(event.id)), ("reason", error)])
                }
            }
            do {
                try registry.write { store throws(RegistryError) in try store.recordAttempt(recipient: recipient, eventID: event.id, outcome) }
            } catch {
                // The attempt is made again: a receiver may see an event twice (X-Tandem-Delivery says so), never miss one.
                dispatcher.log("cannot record a webhook attempt", [("recipient", recipient), ("reason", error.description)])
                signal.wait(milliseconds: 1_000)
            }
        }
    }

    /// One POST of `event` to the provider's webhook.
    func attempt(_ delivery: EventDelivery, _ event: RegistryEvent) -> DeliveryOutcome {
        let now = dispatcher.clock()
        let attemptNumber = delivery.attempts + 1
        guard let provider = dispatcher.registry.snapshot.provider(providerID)?.value, let url = provider.webhookURL,
              let target = WebhookTarget(url), let secret = provider.webhookSecret else {
            return .failed(status: nil, error: "provider '\(providerID)' has no http webhook URL now", retryAt: nil)
        }
        let payload = (try? JSONValue.parse(event.payload)) ?? .null
        let body = Array(WebhookRouting.body(of: event, payload: payload, for: provider).description.utf8)
        let post = HTTPPost(target: target, headers: [
            ("Content-Type", "application/json"), ("User-Agent", dispatcher.options.userAgent),
            ("X-Tandem-Event", event.type), ("X-Tandem-Delivery", String(event.id)),
            ("X-Tandem-Attempt", String(attemptNumber)),
            (WebhookSignature.header, WebhookSignature.value(secret: secret, seconds: now / 1000, body: body)),
        ], body: body, timeout: dispatcher.options.webhookTimeout)
        do {
            let status = try post.send()
            if (200..<300).contains(status) { return .delivered(status: status) }
            return dispatcher.options.retry.afterFailure(attempt: attemptNumber, status: status, error: "HTTP \(status)", now: dispatcher.clock())
        } catch {
            return dispatcher.options.retry.afterFailure(attempt: attemptNumber, status: nil, error: error.description, now: dispatcher.clock())
        }
    }
}
