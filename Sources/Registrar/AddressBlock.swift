#if canImport(Glibc)
import Glibc
#endif

/// An IP address or CIDR block (`192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`): a trusted source.
public struct AddressBlock: Sendable, Hashable, CustomStringConvertible {
    /// 16 bytes; IPv4 as an IPv4-mapped IPv6 address, so one comparison serves both families.
    let network: [UInt8]
    /// Prefix length over the 128 bits.
    let prefix: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.bytes(String(parts[0])) else { return nil }
        let isIPv4 = !parts[0].contains(":")
        let width = isIPv4 ? 32 : 128
        var length = width
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...width).contains(value), parts[1].allSatisfy(\.isNumber) else { return nil }
            length = value
        }
        prefix = length + (isIPv4 ? 96 : 0)
        network = Self.masked(address, prefix)
        description = text
    }

    /// Whether `host` (an IP literal, IPv6 with or without brackets) lies in the block.
    public func contains(_ host: String) -> Bool {
        guard let address = Self.bytes(host) else { return false }
        return Self.masked(address, prefix) == network
    }

    static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        var result = bytes
        for index in 0..<16 {
            let bits = max(0, min(8, prefix - index * 8))
            result[index] &= bits == 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff00 >> bits)
        }
        return result
    }

    /// 16 bytes of an IPv4 (mapped) or IPv6 literal, by inet_pton.
    static func bytes(_ text: String) -> [UInt8]? {
        var host = text
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, host, &address) == 1 else { return nil }
            return withUnsafeBytes(of: &address) { Array($0) }
        }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return nil }
        return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + withUnsafeBytes(of: &address) { Array($0) }
    }
}
