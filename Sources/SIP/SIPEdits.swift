/// Forwarding by editing the received bytes instead of re-serializing (DESIGN.md "Forwarding without
/// re-serializing", Kamailio's lumps): new header lines are inserted after the start line, whole
/// header lines are removed, one header value is replaced. The meaning of every line comes from
/// libosip2's parse of the same bytes; here only line positions and header names are found.
///
/// An edit returns `nil` when the bytes are not in the simple shape it handles (CRLF line ends, each
/// edited value on a line of its own); the caller then falls back to libosip2's serializer.
public enum SIPEdits {
    /// What to do to a request on its way downstream.
    public struct RequestEdits: Sendable {
        /// The new value of the first Via (the received one, stamped with received/rport).
        public var topVia: String?
        /// How many Route values to remove from the top (those naming this proxy).
        public var removeRoutes: Int
        /// The new Max-Forwards value (the header is added when absent).
        public var maxForwards: Int?
        /// Header lines to insert right after the start line, top first.
        public var insert: [String]

        public init(topVia: String?, removeRoutes: Int, maxForwards: Int?, insert: [String]) {
            self.topVia = topVia
            self.removeRoutes = removeRoutes
            self.maxForwards = maxForwards
            self.insert = insert
        }
    }

    private enum Kind { case via, route, maxForwards, other }

    /// A request with the edits applied; `contentLength` cuts extra datagram bytes (RFC 3261 §18.3).
    public static func request(_ bytes: [UInt8], contentLength: Int?, _ edits: RequestEdits) -> [UInt8]? {
        rewrite(bytes, contentLength: contentLength) { output, kind, line, sawVia, routesLeft, sawMaxForwards in
            switch kind {
            case .via where !sawVia:
                guard let topVia = edits.topVia else { return .keep }
                return .replace("Via: " + topVia)
            case .route where routesLeft > 0:
                return .remove
            case .maxForwards:
                guard let value = edits.maxForwards else { return .keep }
                return .replace("Max-Forwards: \(value)")
            default:
                return .keep
            }
        } start: { edits.insert } routes: { edits.removeRoutes } addMaxForwards: {
            edits.maxForwards.map { "Max-Forwards: \($0)" }
        }
    }

    /// A response without its top Via: what a proxy sends upstream (§16.7 step 3).
    public static func responseWithoutTopVia(_ bytes: [UInt8], contentLength: Int?) -> [UInt8]? {
        rewrite(bytes, contentLength: contentLength) { _, kind, _, sawVia, _, _ in
            kind == .via && !sawVia ? .remove : .keep
        } start: { [] } routes: { 0 } addMaxForwards: { nil }
    }

    private enum LineAction { case keep, remove, replace(String) }

    private static func rewrite(
        _ bytes: [UInt8], contentLength: Int?,
        _ decide: (inout [UInt8], Kind, Range<Int>, Bool, Int, Bool) -> LineAction,
        start insert: () -> [String], routes: () -> Int, addMaxForwards: () -> String?
    ) -> [UInt8]? {
        let count = bytes.count
        return bytes.withUnsafeBufferPointer { buffer -> [UInt8]? in
            // Start line.
            var index = 0
            while index + 1 < count, !(buffer[index] == 0x0D && buffer[index + 1] == 0x0A) {
                if buffer[index] == 0x0A { return nil }
                index += 1
            }
            guard index + 1 < count else { return nil }
            index += 2
            var output: [UInt8] = []
            output.reserveCapacity(count + 256)
            output.append(contentsOf: buffer[0..<index])
            for line in insert() {
                output.append(contentsOf: line.utf8)
                output.append(0x0D)
                output.append(0x0A)
            }
            var sawVia = false
            var routesLeft = routes()
            var sawMaxForwards = false
            while true {
                guard index + 1 < count else { return nil }
                if buffer[index] == 0x0D && buffer[index + 1] == 0x0A { break }  // end of headers
                let lineStart = index
                var nameEnd = lineStart
                while nameEnd < count, buffer[nameEnd] != 0x3A, buffer[nameEnd] != 0x0D, buffer[nameEnd] != 0x0A {
                    nameEnd += 1
                }
                var end = lineStart
                var commas = false
                while true {
                    while end + 1 < count, !(buffer[end] == 0x0D && buffer[end + 1] == 0x0A) {
                        if buffer[end] == 0x0A { return nil }
                        if buffer[end] == 0x2C && end > nameEnd { commas = true }
                        end += 1
                    }
                    guard end + 1 < count else { return nil }
                    end += 2
                    if end < count, buffer[end] == 0x20 || buffer[end] == 0x09 { continue }  // folded
                    break
                }
                var nameLast = nameEnd
                while nameLast > lineStart, buffer[nameLast - 1] == 0x20 || buffer[nameLast - 1] == 0x09 { nameLast -= 1 }
                let kind = classify(buffer, lineStart, nameLast)
                let action = decide(&output, kind, lineStart..<end, sawVia, routesLeft, sawMaxForwards)
                switch action {
                case .keep:
                    output.append(contentsOf: buffer[lineStart..<end])
                case .remove, .replace:
                    // Only a value on a line of its own can be removed or replaced here.
                    if commas { return nil }
                    if case .replace(let text) = action {
                        output.append(contentsOf: text.utf8)
                        output.append(0x0D)
                        output.append(0x0A)
                    }
                }
                switch kind {
                case .via: sawVia = true
                case .route: if case .remove = action { routesLeft -= 1 }
                case .maxForwards: sawMaxForwards = true
                case .other: break
                }
                index = end
            }
            guard routesLeft == 0 else { return nil }
            if !sawMaxForwards, let line = addMaxForwards() {
                output.append(contentsOf: line.utf8)
                output.append(0x0D)
                output.append(0x0A)
            }
            let headEnd = index + 2
            let available = count - headEnd
            // The length came from the wire: never trust it as an index (a negative or huge value
            // once trapped here); a body it does not fit is left to the serializer's checks.
            let body = contentLength ?? available
            guard body >= 0, body <= available else { return nil }
            output.append(contentsOf: buffer[index..<(headEnd + body)])
            return output
        }
    }

    private static let via: [UInt8] = Array("via".utf8)
    private static let route: [UInt8] = Array("route".utf8)
    private static let maxForwards: [UInt8] = Array("max-forwards".utf8)

    private static func classify(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Kind {
        let length = end - start
        if length == 1, buffer[start] | 0x20 == 0x76 { return .via }  // compact "v"
        if equalsLowercase(buffer, start, end, via) { return .via }
        if equalsLowercase(buffer, start, end, route) { return .route }
        if equalsLowercase(buffer, start, end, maxForwards) { return .maxForwards }
        return .other
    }

    private static func equalsLowercase(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ name: [UInt8]) -> Bool {
        guard end - start == name.count else { return false }
        for offset in 0..<name.count {
            let byte = buffer[start + offset]
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != name[offset] { return false }
        }
        return true
    }
}
