/// Where a message's header section ends in raw bytes.
///
/// Only the *position* of the blank line is found here; the meaning of every header still comes from
/// libosip2. Stream transports need this before a message is complete (RFC 3261 §18.3).
public enum SIPFraming {
    /// The length of the header section including the blank line that ends it, or `nil` if the
    /// blank line has not arrived. Accepts CRLF CRLF and, leniently, LF LF.
    public static func headerSectionLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let count = bytes.count
        var i = 0
        while i < count {
            if bytes[i] == 0x0A {
                if i + 1 < count, bytes[i + 1] == 0x0A { return i + 2 }
                if i + 2 < count, bytes[i + 1] == 0x0D, bytes[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    public static func headerSectionLength(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { headerSectionLength($0) }
    }

    /// A Content-Length value as RFC 3261 §20.14 writes it, `1*DIGIT` with optional surrounding
    /// spaces, or `nil`: no sign, no other character, nothing a body on any transport could not hold
    /// (at most 2^31 - 1, so no sum with it overflows). Every length from the wire goes through here
    /// before it is used as a count.
    public static func contentLength<S: StringProtocol>(_ text: S) -> Int? {
        contentLength(bytes: text.utf8)
    }

    /// The same, over bytes (libosip2's C string, without making a String of it).
    public static func contentLength<Bytes: Sequence<UInt8>>(bytes: Bytes) -> Int? {
        var value = 0
        var digits = 0
        var trailing = false
        for byte in bytes {
            switch byte {
            case 0x30...0x39 where !trailing:
                value = value * 10 + Int(byte - 0x30)
                digits += 1
                guard value <= Int(Int32.max) else { return nil }
            case 0x20, 0x09:
                if digits > 0 { trailing = true }
            default:
                return nil
            }
        }
        return digits > 0 ? value : nil
    }

    /// Header lines of a header section, unfolded, as (name, value) with the positions only.
    ///
    /// Used to salvage Via and the dialog headers from a message libosip2 refused as a whole, so a
    /// 400 can still reach the sender; each value is then parsed by libosip2 on its own.
    public static func headerLines(_ bytes: [UInt8]) -> [(name: String, value: String)] {
        let end = headerSectionLength(bytes) ?? bytes.count
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < end {
            let byte = bytes[index]
            if byte == 0x0A {
                if current.last == 0x0D { current.removeLast() }
                lines.append(current)
                current = []
            } else {
                current.append(byte)
            }
            index += 1
        }
        if !current.isEmpty { lines.append(current) }
        guard !lines.isEmpty else { return [] }
        var result: [(String, String)] = []
        for line in lines.dropFirst() {
            if line.isEmpty { break }
            if (line.first == 0x20 || line.first == 0x09), !result.isEmpty {
                result[result.count - 1].1 += " " + String(decoding: line, as: UTF8.self).trimmingSpaces
                continue
            }
            guard let colon = line.firstIndex(of: 0x3A) else { continue }
            let name = String(decoding: line[..<colon], as: UTF8.self).trimmingSpaces
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces
            result.append((String(name), String(value)))
        }
        return result
    }
}
