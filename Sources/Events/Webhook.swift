import Crypto
import Foundation
import JSON
import Registry

/// Which providers' webhooks an event goes to, and what each of them is shown: a provider learns
/// about its own apps and subscribers, under the ID it knows them by, and nothing of other providers.
public enum WebhookRouting {
    /// Providers the event concerns: the provider of an activated or deactivated app, the old and new
    /// carrier of a switched number, the providers whose apps an ended call went through.
    public static func providers(of type: String, payload: JSONValue) -> [String] {
        var found: [String] = []
        func add(_ value: JSONValue?) {
            if let id = value?.stringValue, !found.contains(id) { found.append(id) }
        }
        switch type {
        case "app.activated", "app.deactivated":
            add(payload["provider"])
        case "number.provider_switched":
            add(payload["from"])
            add(payload["to"])
        case "call.ended", "call.missed":
            for leg in payload["apps"]?.arrayValue ?? [] { add(leg["provider_id"]) }
        default:
            break
        }
        return found
    }

    /// The body POSTed to `provider`: the event's envelope and the part of its payload that is the
    /// provider's. A call's number is shown only to providers that know subscribers by number.
    public static func body(of event: RegistryEvent, payload: JSONValue, for provider: Provider) -> JSONValue {
        var data = payload
        if event.type == "call.ended" || event.type == "call.missed" {
            var projected: [String: JSONValue] = [:]
            for key in ["cdr_id", "call_id", "disposition", "sip_code", "start_time", "end_time", "billable_ms"] {
                projected[key] = payload[key] ?? .null
            }
            projected["apps"] = .array((payload["apps"]?.arrayValue ?? []).filter { $0["provider_id"]?.stringValue == provider.id }.map {
                ["app_id": $0["app_id"] ?? .null, "subscriber_id": $0["subscriber_id"] ?? .null]
            })
            if provider.idScheme == .tn { projected["number"] = payload["destination"] ?? .null }
            data = .object(projected)
        }
        return ["id": JSONValue(event.id), "type": .string(event.type), "time": .string(event.time),
                "provider": .string(provider.id), "data": data]
    }
}

/// The `X-Tandem-Signature` header: `t=UNIX_SECONDS,v1=HEX` where HEX is HMAC-SHA256 with the
/// provider's webhook secret over `UNIX_SECONDS.BODY`. The time inside the signed text lets a
/// receiver refuse replays of an old delivery.
public enum WebhookSignature {
    public static let header = "X-Tandem-Signature"

    public static func value(secret: String, seconds: Int64, body: [UInt8]) -> String {
        "t=\(seconds),v1=\(digest(secret: secret, seconds: seconds, body: body))"
    }

    static func digest(secret: String, seconds: Int64, body: [UInt8]) -> String {
        Hex.encode(HMAC.sha256(key: Array(secret.utf8), message: Array("\(seconds).".utf8) + body))
    }

    /// Checks a header as a receiver would (constant-time comparison).
    public static func verify(_ header: String, secret: String, body: [UInt8]) -> Bool {
        var seconds: Int64?
        var signature: String?
        for part in header.split(separator: ",") {
            if part.hasPrefix("t=") { seconds = Int64(part.dropFirst(2)) }
            if part.hasPrefix("v1=") { signature = String(part.dropFirst(3)) }
        }
        guard let seconds, let signature else { return false }
        return constantTimeEquals(Array(digest(secret: secret, seconds: seconds, body: body).utf8), Array(signature.utf8))
    }
}

/// When a failed delivery is tried again: the delay doubles from `initial` up to `maximum`, and
/// after `attempts` tries the delivery is given up (`failed`; `events.redeliver` queues it again).
public struct RetrySchedule: Sendable, Equatable {
    public var initial: Int64
    public var maximum: Int64
    public var attempts: Int

    public init(initial: Int64 = 1_000, maximum: Int64 = 300_000, attempts: Int = 10) {
        self.initial = initial
        self.maximum = maximum
        self.attempts = attempts
    }

    /// The outcome to record after attempt number `attempt` (1 for the first) failed at `now`.
    public func afterFailure(attempt: Int, status: Int?, error: String, now: Int64) -> DeliveryOutcome {
        guard attempt < attempts else { return .failed(status: status, error: error, retryAt: nil) }
        let shift = min(attempt - 1, 30)
        let delay = min(maximum, initial << Int64(shift))
        return .failed(status: status, error: error, retryAt: now + delay)
    }
}

/// An `http://host[:port]/path` webhook address.
public struct WebhookTarget: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Path and query, at least `/`.
    public var path: String

    public init(host: String, port: Int, path: String) {
        self.host = host
        self.port = port
        self.path = path
    }

    public init?(_ text: String) {
        guard let components = URLComponents(string: text), components.scheme?.lowercased() == "http",
              let host = components.host, !host.isEmpty else { return nil }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 80
        guard (1...65_535).contains(port) else { return nil }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.path = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    /// The `Host` header (RFC 9110 §7.2): the port only when it is not 80.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? name : "\(name):\(port)"
    }
}
