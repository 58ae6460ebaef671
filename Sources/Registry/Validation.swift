#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SIP

/// Field checks shared by the admin methods and the CSV import, each failing with the field's name.
enum Validate {
    static func e164(_ field: String, _ value: String) throws(RegistryError) -> String {
        let digits = value.utf8.dropFirst()
        guard value.utf8.first == UInt8(ascii: "+"), (2...15).contains(digits.count),
              digits.allSatisfy({ (48...57).contains($0) }), digits.first != 48 else {
            throw .invalid(field, "'\(value)' is not E.164 (+ and 2 to 15 digits, no leading 0)")
        }
        return value
    }

    /// Identifiers chosen by operators: letters, digits, `.`, `_`, `-`; up to 64 characters.
    static func identifier(_ field: String, _ value: String) throws(RegistryError) -> String {
        let bytes = Array(value.utf8)
        guard (1...64).contains(bytes.count),
              bytes.allSatisfy({ isAlphanumeric($0) || $0 == 46 || $0 == 95 || $0 == 45 }),
              isAlphanumeric(bytes[0]) else {
            throw .invalid(field, "'\(value)' is not an identifier (1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit)")
        }
        return value
    }

    static func delivery(_ delivery: Delivery) throws(RegistryError) {
        guard Delivery.ringTimeoutRange.contains(delivery.ringTimeout) else {
            throw .invalid("ring_timeout", "\(delivery.ringTimeout) is outside \(Delivery.ringTimeoutRange.lowerBound) to \(Delivery.ringTimeoutRange.upperBound) seconds")
        }
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
    }

    static func text(_ field: String, _ value: String, maximum: Int = 200) throws(RegistryError) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .invalid(field, "must not be empty") }
        guard trimmed.count <= maximum else { throw .invalid(field, "longer than \(maximum) characters") }
        guard !trimmed.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
            throw .invalid(field, "contains control characters")
        }
        return trimmed
    }

    static func timeZone(_ field: String, _ value: String) throws(RegistryError) -> String {
        guard TimeZone(identifier: value) != nil else {
            throw .invalid(field, "'\(value)' is not an IANA time zone (e.g. Europe/Paris, UTC)")
        }
        return value
    }

    /// The user part of a SIP URI a device registers with (RFC 3261 §25.1 `user`, kept to the
    /// characters no peer mangles).
    static func sipUsername(_ field: String, _ value: String) throws(RegistryError) -> String {
        let bytes = Array(value.utf8)
        guard (1...64).contains(bytes.count),
              bytes.allSatisfy({ isAlphanumeric($0) || [46, 95, 45, 43, 126].contains($0) }) else {
            throw .invalid(field, "'\(value)' is not a SIP username (1 to 64 letters, digits, '.', '_', '-', '+', '~')")
        }
        return value
    }

    static func password(_ field: String, _ value: String) throws(RegistryError) -> String {
        guard value.count >= 8 else { throw .invalid(field, "must be at least 8 characters") }
        guard value.utf8.count <= 128 else { throw .invalid(field, "longer than 128 bytes") }
        guard !value.unicodeScalars.contains(where: { $0.value < 32 }) else { throw .invalid(field, "contains control characters") }
        return value
    }

    static func sipURI(_ field: String, _ value: String) throws(RegistryError) -> SIPURI {
        switch SIPURI.nextHop(value) {
        case .success(let uri): return uri
        case .failure(let error): throw .invalid(field, error.reason)
        }
    }

    /// An IPv4 or IPv6 address, or a CIDR block of either.
    static func addressBlock(_ field: String, _ value: String) throws(RegistryError) -> String {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { throw .invalid(field, "'\(value)' is not an IP address or CIDR block") }
        let host = String(parts[0])
        var buffer = [UInt8](repeating: 0, count: 16)
        let maximum: Int
        if inet_pton(AF_INET, host, &buffer) == 1 { maximum = 32 }
        else if inet_pton(AF_INET6, host, &buffer) == 1 { maximum = 128 }
        else { throw .invalid(field, "'\(value)' is not an IP address or CIDR block") }
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length) else {
                throw .invalid(field, "'\(value)' has a prefix length outside 0 to \(maximum)")
            }
        }
        return value
    }

    static func email(_ field: String, _ value: String) throws(RegistryError) -> String {
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              value.utf8.count <= 254, !value.contains(where: { $0 == " " || $0 == "<" || $0 == ">" || $0 == "," || $0 == ";" }) else {
            throw .invalid(field, "'\(value)' is not an e-mail address")
        }
        return value.lowercased()
    }

    static func domain(_ field: String, _ value: String) throws(RegistryError) -> String {
        let labels = value.lowercased().split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, value.utf8.count <= 253,
              labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.utf8.allSatisfy { isAlphanumeric($0) || $0 == 45 } }) else {
            throw .invalid(field, "'\(value)' is not a domain name")
        }
        return value.lowercased()
    }

    static func webhookURL(_ field: String, _ value: String) throws(RegistryError) -> String {
        guard let url = URL(string: value), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw .invalid(field, "'\(value)' is not an http URL")
        }
        // Tandem links libcrypto for its hashes, not a TLS stack: an https endpoint is reached through
        // a local TLS relay (stunnel, a sidecar proxy), refused here rather than failing every delivery.
        guard scheme == "http" else {
            throw .invalid(field, "https webhooks are not supported; give an http URL (for example a local TLS relay to the provider)")
        }
        return value
    }

    static func currency(_ field: String, _ value: String) throws(RegistryError) -> String {
        guard value.utf8.count == 3, value.utf8.allSatisfy({ (65...90).contains($0) }) else {
            throw .invalid(field, "'\(value)' is not an ISO 4217 code (three capital letters)")
        }
        return value
    }

    static func amount(_ field: String, _ value: Int) throws(RegistryError) -> Int {
        guard (0...1_000_000_000).contains(value) else { throw .invalid(field, "must be from 0 to 1000000000 minor units") }
        return value
    }

    static func idScheme(_ field: String, _ value: String) throws(RegistryError) -> IDScheme {
        guard let scheme = IDScheme(text: value) else {
            throw .invalid(field, "'\(value)' is not tn, email, generated or template:PATTERN")
        }
        if case .template(let pattern) = scheme {
            let placeholders = ["{number}", "{digits}", "{account}", "{owner}", "{random}"]
            var rest = pattern
            for placeholder in placeholders { rest = rest.replacingOccurrences(of: placeholder, with: "") }
            guard !rest.contains("{"), !rest.contains("}") else {
                throw .invalid(field, "template placeholders are \(placeholders.joined(separator: ", "))")
            }
            guard pattern.contains("{number}") || pattern.contains("{digits}") || pattern.contains("{random}") || pattern.contains("{owner}") else {
                throw .invalid(field, "a template must contain {number}, {digits}, {owner} or {random} to be unique per subscriber")
            }
        }
        return scheme
    }
}

/// Identifiers Tandem mints: a prefix and random base-36 characters.
enum MintedID {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz")

    static func random(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }

    static func make(_ prefix: String) -> String { "\(prefix)_\(random(10))" }
}
