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
    /// next for a stateless relay), CSeq and the dialog identifiers (transaction and call matching,
    /// the call's record), and the framing of the body (Content-Length, Content-Type).
    public static let relayedResponse = HeaderSelection(["Via", "CSeq", "Call-ID", "From", "To", "Content-Length", "Content-Type"])

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
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var lineStart = 0
            var first = true
            var keeping = false
            while lineStart < end {
                var lineEnd = lineStart
                while lineEnd < end && buffer[lineEnd] != 0x0A { lineEnd += 1 }
                let next = min(lineEnd + 1, end)
                let line = UnsafeRawBufferPointer(rebasing: buffer[lineStart..<next])
                defer { lineStart = next }
                if first {
                    first = false
                    out.append(contentsOf: line)
                    continue
                }
                let isBlank = line.count == 1 || (line.count == 2 && line[0] == 0x0D)
                if isBlank {
                    out.append(contentsOf: line)
                    break
                }
                if line[0] == 0x20 || line[0] == 0x09 {
                    // A folded continuation belongs to the header above it.
                    if keeping { out.append(contentsOf: line) }
                    continue
                }
                guard let colon = line.firstIndex(of: 0x3A) else {
                    keeping = false
                    continue
                }
                var nameEnd = colon
                while nameEnd > 0 && (line[nameEnd - 1] == 0x20 || line[nameEnd - 1] == 0x09) { nameEnd -= 1 }
                keeping = selection.contains(UnsafeRawBufferPointer(rebasing: line[0..<nameEnd]))
                if keeping { out.append(contentsOf: line) }
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[end...]))
            return out
        }
        guard let reduced else { throw SIPMessageError(.unparseable, "Malformed message") }
        let message = try parse(reduced)
        message.isPartial = true
        return message
    }
}
