import Crypto
import SIP
import Synchronization

/// Nonces that need no server state (RFC 7616 §3.3 leaves the form to the server): the time of
/// issue and 8 random bytes, followed by an HMAC-SHA256 of both and the realm under a server secret.
/// Any Tandem holding the secret can check a nonce another one issued; a forged or altered nonce
/// fails the HMAC; an old one is reported stale so the device retries without asking its user.
public struct NonceIssuer: Sendable {
    let secret: [UInt8]

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    public enum Check: Sendable, Equatable {
        /// Ours and fresh; issued at this Unix time (seconds).
        case valid(issuedAt: Int64)
        /// Genuine but older than the lifetime: challenge again with `stale=true` (RFC 7616 §3.3).
        case stale
        /// Not one of ours (or altered).
        case invalid
    }

    /// A fresh nonce, 64 hex digits.
    public func issue(now: Int64, realm: String) -> String {
        var payload = Self.bigEndian(UInt64(max(0, now / 1000)))
        payload += secureRandomBytes(8)
        return Hex.encode(payload + mac(payload, realm: realm))
    }

    /// `lifetime`: seconds a nonce stays valid.
    public func check(_ nonce: String, now: Int64, realm: String, lifetime: Int) -> Check {
        guard nonce.utf8.count == 64, let bytes = Self.hexBytes(nonce) else { return .invalid }
        let payload = Array(bytes[0..<16])
        guard constantTimeEquals(Array(bytes[16...]), mac(payload, realm: realm)) else { return .invalid }
        let issued = payload[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let age = now / 1000 - Int64(issued)
        // A nonce from the future (clock stepped back on another node) is as good as a fresh one.
        return age <= Int64(lifetime) ? .valid(issuedAt: Int64(issued)) : .stale
    }

    private func mac(_ payload: [UInt8], realm: String) -> [UInt8] {
        Array(HMAC.sha256(key: secret, message: payload + Array(realm.utf8)).prefix(16))
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) }
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = character - UInt8(ascii: "A") + 10
            default: return nil
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return high == nil ? bytes : nil
    }
}

/// One challenge: a `WWW-Authenticate` or `Proxy-Authenticate` value (RFC 7616 §3.3).
public struct DigestChallenge: Sendable, Equatable {
    public var realm: String
    public var nonce: String
    public var algorithm: DigestAlgorithm
    public var stale: Bool

    public init(realm: String, nonce: String, algorithm: DigestAlgorithm, stale: Bool) {
        self.realm = realm
        self.nonce = nonce
        self.algorithm = algorithm
        self.stale = stale
    }

    public var headerValue: String {
        var value = "Digest realm=\"\(realm)\", nonce=\"\(nonce)\", algorithm=\(algorithm.rawValue), qop=\"auth\""
        if stale { value += ", stale=true" }
        return value
    }

    /// RFC 8760 §2.4 / RFC 7616 §3.7: one challenge per algorithm, in preference order, all with the
    /// same nonce.
    public static func offer(_ algorithms: [DigestAlgorithm] = [.sha256, .md5], realm: String, nonce: String,
                             stale: Bool) -> [DigestChallenge] {
        algorithms.map { DigestChallenge(realm: realm, nonce: nonce, algorithm: $0, stale: stale) }
    }
}

/// Checks a digest response (RFC 7616 §3.4.1, qop=auth) against a stored HA1.
public enum DigestVerifier {
    public enum Outcome: Sendable, Equatable {
        case valid
        /// A field the computation needs is missing or malformed; the reason names it.
        case malformed(String)
        case unsupportedAlgorithm(String)
        case wrongResponse
    }

    /// The algorithm credentials name (`MD5` when absent).
    public static func algorithm(of credentials: DigestCredentials) -> DigestAlgorithm? {
        guard let name = credentials.algorithm else { return .md5 }
        return DigestAlgorithm.allCases.first { $0.rawValue.caseInsensitiveEquals(name) }
    }

    /// `ha1` is the user's stored HA1 for the credentials' algorithm.
    public static func verify(_ credentials: DigestCredentials, method: String, ha1: String) -> Outcome {
        guard let algorithm = algorithm(of: credentials) else { return .unsupportedAlgorithm(credentials.algorithm ?? "") }
        guard let nonce = credentials.nonce else { return .malformed("nonce") }
        guard let uri = credentials.uri else { return .malformed("uri") }
        guard let response = credentials.response else { return .malformed("response") }
        guard credentials.qop?.lowercased() == "auth" else { return .malformed("qop (auth is required)") }
        guard let cnonce = credentials.cnonce, !cnonce.isEmpty else { return .malformed("cnonce") }
        guard let nc = credentials.nonceCount, nc.utf8.count == 8, UInt32(nc, radix: 16) != nil else { return .malformed("nc") }
        let ha2 = algorithm.hex("\(method):\(uri)")
        let expected = algorithm.hex("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)")
        return constantTimeEquals(Array(expected.utf8), Array(response.lowercased().utf8)) ? .valid : .wrongResponse
    }

    /// The `response` a client computes; for tests and trace tools that play the client.
    public static func response(algorithm: DigestAlgorithm, ha1: String, nonce: String, nc: String, cnonce: String,
                                method: String, uri: String) -> String {
        let ha2 = algorithm.hex("\(method):\(uri)")
        return algorithm.hex("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)")
    }
}

/// Nonce-count replay protection (RFC 7616 §3.4.5): the highest `nc` accepted per nonce. A request
/// whose `nc` does not exceed it is a replay. The table is bounded: when full, the nonces first used
/// longest ago are forgotten, and the newest issue time among them becomes a watermark — a nonce
/// not in the table but issued at or before it may have been forgotten, so it is answered `unknown`
/// (challenge again, stale) and never let through.
public final class NonceCounts: Sendable {
    private struct State {
        var highest: [String: (nc: UInt32, issuedAt: Int64)] = [:]
        /// First-use order, for eviction; entries already forgotten are skipped.
        var order: [String] = []
        var head = 0
        var watermark = Int64.min
    }

    public enum Verdict: Sendable, Equatable {
        case accepted
        case replayed
        /// The nonce may have been forgotten: ask for a fresh one.
        case unknown
    }

    private let state = Mutex(State())
    public let capacity: Int

    public init(capacity: Int = 200_000) {
        self.capacity = max(1, capacity)
    }

    /// Accepts `nc` for `nonce` (issued at `issuedAt`, Unix seconds) when it exceeds the highest seen.
    public func accept(nonce: String, issuedAt: Int64, nc: UInt32) -> Verdict {
        state.withLock { state in
            if let entry = state.highest[nonce] {
                guard nc > entry.nc else { return .replayed }
                state.highest[nonce] = (nc, entry.issuedAt)
                return .accepted
            }
            guard issuedAt > state.watermark else { return .unknown }
            state.highest[nonce] = (nc, issuedAt)
            state.order.append(nonce)
            while state.highest.count > capacity, state.head < state.order.count {
                let oldest = state.order[state.head]
                state.head += 1
                if let gone = state.highest.removeValue(forKey: oldest) {
                    state.watermark = max(state.watermark, gone.issuedAt)
                }
            }
            if state.head > 4_096 && state.head * 2 > state.order.count {
                state.order.removeFirst(state.head)
                state.head = 0
            }
            return .accepted
        }
    }

    /// Forgets nonces issued before `cutoff` (Unix seconds): they are stale anyway.
    public func forget(issuedBefore cutoff: Int64) {
        state.withLock { state in
            state.highest = state.highest.filter { $0.value.issuedAt >= cutoff }
            state.order = state.order[state.head...].filter { state.highest[$0] != nil }
            state.head = 0
        }
    }

    public var count: Int { state.withLock { $0.highest.count } }
}
