#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as two 64-bit halves (IPv4 as an IPv4-mapped IPv6 address, so one
/// comparison serves both families): read from text once per message, then matched against any
/// number of blocks with two masks and two comparisons each.
public struct IPAddress: Sendable, Hashable {
    let high: UInt64
    let low: UInt64

    /// An IPv4 or IPv6 literal, IPv6 with or without brackets (inet_pton).
    public init?(_ text: String) {
        let bytes = text.utf8
        var host = Substring(text)
        if bytes.first == UInt8(ascii: "["), bytes.last == UInt8(ascii: "]") { host = host.dropFirst().dropLast() }
        var words: (UInt64, UInt64) = (0, 0)
        if host.utf8.contains(UInt8(ascii: ":")) {
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(host), &address) == 1 else { return nil }
            withUnsafeBytes(of: &address) { raw in
                words = (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian,
                         raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
            }
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, String(host), &address) == 1 else { return nil }
            words = (0, 0x0000_ffff_0000_0000 | UInt64(UInt32(bigEndian: address.s_addr)))
        }
        high = words.0
        low = words.1
    }
}

/// An IP address or CIDR block (`192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`): a trusted source.
public struct AddressBlock: Sendable, Hashable, CustomStringConvertible {
    let network: IPAddress
    /// The prefix as a mask over the two halves.
    let maskHigh: UInt64
    let maskLow: UInt64
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let isIPv4 = !parts[0].utf8.contains(UInt8(ascii: ":"))
        let width = isIPv4 ? 32 : 128
        var length = width
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...width).contains(value), parts[1].allSatisfy(\.isNumber) else { return nil }
            length = value
        }
        let prefix = length + (isIPv4 ? 96 : 0)
        maskHigh = prefix >= 64 ? .max : (prefix == 0 ? 0 : ~(UInt64.max >> UInt64(prefix)))
        maskLow = prefix <= 64 ? 0 : (prefix == 128 ? .max : ~(UInt64.max >> UInt64(prefix - 64)))
        network = IPAddress(high: address.high & maskHigh, low: address.low & maskLow)
        description = text
    }

    /// Whether `address` lies in the block.
    public func contains(_ address: IPAddress) -> Bool {
        address.high & maskHigh == network.high && address.low & maskLow == network.low
    }

    /// Whether `host` (an IP literal, IPv6 with or without brackets) lies in the block.
    public func contains(_ host: String) -> Bool {
        IPAddress(host).map(contains) ?? false
    }
}

extension IPAddress {
    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }
}
