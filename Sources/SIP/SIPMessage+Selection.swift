#if canImport(Glibc)
import Glibc
#endif

/// Parsing only the headers a path reads.
///
/// libosip2 parses every header of a message eagerly, and most of a proxy's cost per message is that
/// parse and the matching frees (docs/PERFORMANCE.md). A response on its way upstream needs only its
/// Via, CSeq, dialog identifiers and framing; the rest passes as bytes. So the header lines are framed
/// (as `SIPFraming.headerLines` does for salvage), the selected ones are copied with the start line and
/// the body into a smaller message, and libosip2 parses that — every header Tandem reads is still
/// parsed by libosip2, and the forwarded bytes are still the received ones.
public struct HeaderSelection: Sendable {
    /// Lower-cased names, long forms and compact letters.
    let names: [[UInt8]]

    public init(_ names: [String]) {
        var all: Set<String> = []
        for name in names {
            let long = HeaderName.canonical(name)
            all.insert(long)
            if let compact = HeaderName.compact(long) { all.insert(compact) }
        }
        self.names = all.sorted().map { Array($0.utf8) }
    }

    /// What a proxy reads of a response it relays (RFC 3261 §16.7): the Vias (its own on top, the
    /// next for a stateless relay), CSeq (transaction matching), To (the tag for the call's record),
    /// and the framing of the body (Content-Length, Content-Type). From, the URI-heavy header a
    /// relay never reads, is left to the bytes.
    public static let relayedResponse = HeaderSelection(["Via", "CSeq", "Call-ID", "To", "Content-Length", "Content-Type"])

    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        names.contains { candidate in
            guard candidate.count == name.count else { return false }
            for index in 0..<name.count {
                var byte = name[index]
                if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
                if byte != candidate[index] { return false }
            }
            return true
        }
    }
}

extension SIPMessage {
    /// Parses the start line, the selected headers and the body of `bytes` (see `HeaderSelection`).
    /// The message knows it is partial: it cannot be serialized, and header reads outside the
    /// selection find nothing.
    public static func parse(_ bytes: [UInt8], selecting selection: HeaderSelection) throws(SIPMessageError) -> SIPMessage {
        let reduced = bytes.withUnsafeBytes { buffer -> [UInt8]? in
            guard let end = SIPFraming.headerSectionLength(buffer) else { return nil }
            // The byte ranges kept, in order: the start line, the selected header lines (with their
            // folded continuations), the blank line and the body; copied once at the end.
            var kept: [Range<Int>] = []
            kept.reserveCapacity(16)
            var lineStart = 0
            var first = true
            var keeping = false
            while lineStart < end {
                let lineEnd = memchr(buffer.baseAddress! + lineStart, 0x0A, end - lineStart)
                    .map { buffer.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? end
                let next = min(lineEnd + 1, end)
                let line = lineStart..<next
                lineStart = next
                if first {
                    first = false
                    kept.append(line)
                    continue
                }
                let length = line.count
                if length == 1 || (length == 2 && buffer[line.lowerBound] == 0x0D) {
                    kept.append(line.lowerBound..<buffer.count)
                    break
                }
                let lead = buffer[line.lowerBound]
                if lead == 0x20 || lead == 0x09 {
                    // A folded continuation belongs to the header above it.
                    if keeping { kept.append(line) }
                    continue
                }
                var colon = line.lowerBound
                while colon < line.upperBound && buffer[colon] != 0x3A { colon += 1 }
                guard colon < line.upperBound else {
                    keeping = false
                    continue
                }
                var nameEnd = colon
                while nameEnd > line.lowerBound && (buffer[nameEnd - 1] == 0x20 || buffer[nameEnd - 1] == 0x09) { nameEnd -= 1 }
                keeping = selection.contains(UnsafeRawBufferPointer(rebasing: buffer[line.lowerBound..<nameEnd]))
                if keeping { kept.append(line) }
            }
            let total = kept.reduce(0) { $0 + $1.count }
            return [UInt8](unsafeUninitializedCapacity: total) { out, count in
                var position = 0
                for range in kept {
                    UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(out)[position..<position + range.count])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[range]))
                    position += range.count
                }
                count = total
            }
        }
        guard let reduced else { throw SIPMessageError(.unparseable, "Malformed message") }
        let message = try parse(reduced)
        message.isPartial = true
        return message
    }
}
