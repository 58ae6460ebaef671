import Crypto
import Foundation
import JSON
import Registrar
import SIP
import SIPTransport

/// What a peer saw arrive.
public enum TraceEvent: Sendable, Equatable {
    case message([UInt8])
    case closed
}

/// The network a trace plays over: the in-memory one (in `swift test`) or real sockets (`tandem-replay`).
public protocol TraceNetwork: AnyObject {
    func address(of peer: String) -> SocketAddress
    func gatewayAddress(_ transport: TransportKind, ipv6: Bool) -> SocketAddress
    func send(_ bytes: [UInt8], from peer: String, chunkSize: Int?) throws
    /// The next event for a peer, waiting up to `timeout` seconds of real time where that applies.
    func receive(for peer: String, timeout: Double) -> TraceEvent?
    /// Any event for the peer (or for any peer) within `within`; `nil` when all stayed quiet.
    func receiveAny(peer: String?, within: Double) -> (peer: String, event: TraceEvent)?
    func close(_ peer: String)
    func wait(_ seconds: Double)
    /// Calls an admin method; returns the JSON-RPC response (with `result` or `error`).
    func admin(_ method: String, _ params: JSONValue) throws -> JSONValue
}

/// The outcome of one trace.
public struct TraceResult: Sendable, CustomStringConvertible {
    public var trace: String
    public var failure: String?
    public var passed: Bool { failure == nil }
    public var description: String {
        if let failure { return "FAIL \(trace)\n\(failure)" }
        return "PASS \(trace)"
    }
}

/// Plays a trace's steps over a network, matching what arrives against the expect templates.
public final class TraceRunner {
    let trace: Trace
    let network: any TraceNetwork
    let timeout: Double
    var variables: [String: String] = [:]
    var ladder: [String] = []

    public init(trace: Trace, network: any TraceNetwork, timeout: Double = 2) {
        self.trace = trace
        self.network = network
        self.timeout = timeout
        variables["call_id"] = Self.token(16) + "@tandem.trace"
        variables["tag"] = Self.token(10)
    }

    struct Failure: Error { var line: Int; var text: String }

    public func run() -> TraceResult {
        do {
            for step in trace.steps { try perform(step) }
            return TraceResult(trace: trace.name, failure: nil)
        } catch let failure as Failure {
            var text = "  at \(trace.name):\(failure.line)\n"
            text += failure.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
            text += "\n  exchange so far:\n"
            text += ladder.isEmpty ? "    (nothing)\n" : ladder.map { "    " + $0 }.joined(separator: "\n") + "\n"
            return TraceResult(trace: trace.name, failure: text)
        } catch {
            return TraceResult(trace: trace.name, failure: "  \(error)")
        }
    }

    // MARK: Steps

    func perform(_ step: Trace.Step) throws {
        switch step {
        case .send(let peer, let mode, let chunkSize, let text, let line):
            variables["branch"] = "z9hG4bK" + Self.token(12)
            let bytes = try build(text, mode: mode, peer: peer, line: line)
            ladder.append("\(peer.padding(toLength: 10, withPad: " ", startingAt: 0)) ──▶ tandem   \(Self.summary(bytes))")
            do { try network.send(bytes, from: peer, chunkSize: chunkSize) } catch {
                throw Failure(line: line, text: "could not send from \(peer): \(error)")
            }
        case .expect(let peer, let template, let line):
            guard let event = network.receive(for: peer, timeout: timeout) else {
                throw Failure(line: line, text: "expected for \(peer):\n\(indent(try expand(template, peer: peer, line: line)))\nreceived nothing")
            }
            guard case .message(let bytes) = event else {
                ladder.append("\(pad(peer)) ◀── tandem   (connection closed)")
                throw Failure(line: line, text: "expected a message for \(peer), but the connection was closed")
            }
            ladder.append("\(pad(peer)) ◀── tandem   \(Self.summary(bytes))")
            try match(bytes, template: template, peer: peer, line: line)
        case .expectNothing(let peer, let within, let line):
            if let (who, event) = network.receiveAny(peer: peer, within: within) {
                let what: String
                switch event {
                case .message(let bytes):
                    ladder.append("\(pad(who)) ◀── tandem   \(Self.summary(bytes))")
                    what = String(decoding: bytes, as: UTF8.self)
                case .closed:
                    what = "(connection closed)"
                }
                throw Failure(line: line, text: "expected nothing, but \(who) received:\n\(indent(what))")
            }
        case .expectClosed(let peer, let line):
            guard let event = network.receive(for: peer, timeout: timeout) else {
                throw Failure(line: line, text: "expected \(peer)'s connection to be closed; it stayed open")
            }
            switch event {
            case .closed:
                ladder.append("\(pad(peer)) ◀── tandem   (connection closed)")
            case .message(let bytes):
                ladder.append("\(pad(peer)) ◀── tandem   \(Self.summary(bytes))")
                throw Failure(line: line, text: "expected \(peer)'s connection to be closed; received:\n\(indent(String(decoding: bytes, as: UTF8.self)))")
            }
        case .expectPong(let peer, let line):
            guard let event = network.receive(for: peer, timeout: timeout) else {
                throw Failure(line: line, text: "expected a CRLF pong for \(peer), received nothing")
            }
            guard event == .message([0x0D, 0x0A]) else {
                throw Failure(line: line, text: "expected a CRLF pong for \(peer), received \(event)")
            }
            ladder.append("\(pad(peer)) ◀── tandem   (CRLF pong)")
        case .close(let peer, _):
            ladder.append("\(pad(peer)) ──▶ tandem   (closes its connection)")
            network.close(peer)
        case .wait(let seconds, _):
            ladder.append("           ⋯ \(seconds) s")
            network.wait(seconds)
        case .set(let name, let value, let line):
            variables[name] = try expand(value, peer: nil, line: line)
        case .admin(let method, let params, let expectError, let pattern, let line):
            let text = try expand(params, peer: nil, line: line)
            guard let value = try? JSONValue.parse(text) else { throw Failure(line: line, text: "admin params are not JSON: \(text)") }
            let response: JSONValue
            do { response = try network.admin(method, value) } catch {
                throw Failure(line: line, text: "admin \(method) could not be called: \(error)")
            }
            ladder.append("admin      ──▶ tandem   \(method)")
            let code = response["error"]?["code"]?.integerValue.map(Int.init)
            if code != expectError {
                throw Failure(line: line, text: "admin \(method): expected \(expectError.map { "error \($0)" } ?? "success"), got \(response)")
            }
            if let pattern {
                let expanded = try expand(pattern, peer: nil, line: line)
                let answer = (response["result"] ?? response["error"] ?? .null).description
                guard let regex = try? Regex(expanded) else { throw Failure(line: line, text: "invalid pattern: \(expanded)") }
                guard answer.contains(regex) else {
                    throw Failure(line: line, text: "admin \(method): the answer does not match \(expanded):\n    \(answer)")
                }
            }
        case .digest(let name, let fields, let line):
            var values: [String: String] = [:]
            for (key, value) in fields { values[key] = try expand(value, peer: nil, line: line) }
            let algorithm = DigestAlgorithm(rawValue: values["algorithm"] ?? "MD5") ?? .md5
            let realm = values["realm"] ?? "tandem"
            let nc = values["nc"] ?? "00000001"
            let cnonce = values["cnonce"] ?? Self.token(8)
            let ha1 = algorithm.ha1(username: values["user"]!, realm: realm, password: values["password"]!)
            let response = DigestVerifier.response(algorithm: algorithm, ha1: ha1, nonce: values["nonce"]!, nc: nc, cnonce: cnonce,
                                                   method: values["method"]!, uri: values["uri"]!)
            variables[name] = "Digest username=\"\(values["user"]!)\", realm=\"\(realm)\", nonce=\"\(values["nonce"]!)\", "
                + "uri=\"\(values["uri"]!)\", response=\"\(response)\", algorithm=\(algorithm.rawValue), cnonce=\"\(cnonce)\", "
                + "qop=auth, nc=\(nc)"
        }
    }

    func pad(_ name: String) -> String { name.padding(toLength: 10, withPad: " ", startingAt: 0) }

    func indent(_ text: String) -> String {
        text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
            .map { "    | " + $0 }.joined(separator: "\n")
    }

    // MARK: Building messages

    func build(_ text: String, mode: Trace.SendMode, peer: String, line: Int) throws -> [UInt8] {
        let expanded = try expand(text, peer: peer, line: line)
        switch mode {
        case .hex:
            let digits = expanded.filter { !$0.isWhitespace }
            guard digits.count % 2 == 0 else { throw Failure(line: line, text: "odd number of hex digits") }
            var bytes: [UInt8] = []
            var index = digits.startIndex
            while index < digits.endIndex {
                let next = digits.index(index, offsetBy: 2)
                guard let byte = UInt8(digits[index..<next], radix: 16) else {
                    throw Failure(line: line, text: "'\(digits[index..<next])' is not a hex byte")
                }
                bytes.append(byte)
                index = next
            }
            return bytes
        case .raw:
            return Array(expanded.split(separator: "\n", omittingEmptySubsequences: false)
                .joined(separator: "\r\n").utf8)
        case .message:
            var lines = expanded.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let blank = lines.firstIndex(of: "") ?? lines.count
            var head = Array(lines[..<blank])
            var body = blank < lines.count ? Array(lines[(blank + 1)...]) : []
            while body.last == "" { body.removeLast() }
            let bodyText = body.isEmpty ? "" : body.joined(separator: "\r\n") + "\r\n"
            for index in head.indices {
                let parts = head[index].split(separator: ":", maxSplits: 1)
                if parts.count == 2, HeaderName.same(String(parts[0]), "Content-Length"),
                   parts[1].trimmingCharacters(in: .whitespaces) == "auto" {
                    head[index] = "\(parts[0]): \(bodyText.utf8.count)"
                }
            }
            lines = head
            return Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + bodyText).utf8)
        }
    }

    /// Expands `${name}`; `peer` selects which gateway address `${gateway.*}` means.
    func expand(_ text: String, peer: String?, line: Int) throws -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw Failure(line: line, text: "unclosed ${ in '\(text)'")
            }
            let name = String(rest[start.upperBound..<end])
            result += try value(of: name, peer: peer, line: line)
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    func value(of name: String, peer: String?, line: Int) throws -> String {
        if let value = variables[name] { return value }
        if name.hasPrefix("pad:"), let count = Int(name.dropFirst(4)), count >= 0 {
            return String(repeating: "a", count: count)
        }
        let parts = name.split(separator: ".").map(String.init)
        if parts.count == 2 {
            let address: SocketAddress
            let transport: TransportKind
            if parts[0] == "gateway" {
                let declared = trace.peers.first { $0.name == peer }
                transport = declared?.transport ?? .udp
                address = network.gatewayAddress(transport, ipv6: declared?.address.isIPv6 ?? false)
            } else if let declared = trace.peers.first(where: { $0.name == parts[0] }) {
                transport = declared.transport
                address = network.address(of: declared.name)
            } else {
                throw Failure(line: line, text: "unknown variable ${\(name)}")
            }
            switch parts[1] {
            case "host": return address.isIPv6 ? "[\(address.host)]" : address.host
            case "ip": return address.host
            case "port": return String(address.port)
            case "addr": return address.description
            case "transport": return transport.viaName
            default: break
            }
        }
        throw Failure(line: line, text: "unknown variable ${\(name)}")
    }

    // MARK: Matching

    func match(_ bytes: [UInt8], template: String, peer: String, line: Int) throws {
        let received = String(decoding: bytes, as: UTF8.self)
        let message: SIPMessage
        do { message = try SIPMessage.parse(bytes) } catch {
            throw Failure(line: line, text: "received bytes that do not parse (\(error.reason)):\n\(indent(received))")
        }
        let lines = template.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let startPattern = lines.first else { return }
        let startLine = Self.startLine(message)
        let expectedStart = try expand(startPattern, peer: peer, line: line)
        var problems: [String] = []
        if !Self.glob(expectedStart, matches: startLine) {
            problems.append("start line: expected '\(expectedStart)', received '\(startLine)'")
        }
        var occurrence: [String: Int] = [:]
        var index = 1
        while index < lines.count, !lines[index].isEmpty {
            defer { index += 1 }
            let templateLine = lines[index]
            guard let colon = templateLine.firstIndex(of: ":") else {
                throw Failure(line: line, text: "template line '\(templateLine)' is not 'Header: value'")
            }
            let name = String(templateLine[..<colon]).trimmingCharacters(in: .whitespaces)
            let spec = String(templateLine[templateLine.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            let canonical = HeaderName.canonical(name)
            let position = occurrence[canonical, default: 0]
            occurrence[canonical] = position + 1
            let values = message.headerValues(name)
            let actual = position < values.count ? values[position] : nil
            if spec == "!" {
                // Absent at this position: no such header at all, or no more after those listed above.
                if let actual {
                    let which = position == 0 ? "absent" : "no occurrence \(position + 1)"
                    problems.append("\(name): expected \(which), received '\(actual)'")
                }
            } else if spec == "*" {
                if actual == nil { problems.append("\(name): expected present (occurrence \(position + 1)), absent") }
            } else if spec.hasPrefix("~") {
                let pattern = try expand(String(spec.dropFirst()).trimmingCharacters(in: .whitespaces), peer: peer, line: line)
                guard let actual else {
                    problems.append("\(name): expected to match /\(pattern)/, absent")
                    continue
                }
                let regex: Regex<AnyRegexOutput>
                do { regex = try Regex(pattern) } catch {
                    throw Failure(line: line, text: "invalid regular expression /\(pattern)/: \(error)")
                }
                if let found = try? regex.firstMatch(in: actual) {
                    for capture in found.output {
                        if let captureName = capture.name, let substring = capture.substring {
                            variables[captureName] = String(substring)
                        }
                    }
                } else {
                    problems.append("\(name): expected to match /\(pattern)/, received '\(actual)'")
                }
            } else {
                let expected = try expand(spec, peer: peer, line: line)
                if actual != expected {
                    problems.append("\(name): expected '\(expected)', received \(actual.map { "'\($0)'" } ?? "nothing")")
                }
            }
        }
        let bodyLines = index < lines.count ? Array(lines[(index + 1)...]) : []
        let expectedBody = try expand(bodyLines.joined(separator: "\r\n"), peer: peer, line: line)
        if !expectedBody.isEmpty {
            let actualBody = String(decoding: message.body, as: UTF8.self)
            if actualBody.trimmingCharacters(in: .newlines) != expectedBody.trimmingCharacters(in: .newlines) {
                problems.append("body: expected\n\(indent(expectedBody))\n  received\n\(indent(actualBody))")
            }
        }
        if !problems.isEmpty {
            throw Failure(line: line, text: problems.joined(separator: "\n") + "\nreceived by \(peer):\n" + indent(received))
        }
    }

    static func startLine(_ message: SIPMessage) -> String {
        if message.isRequest {
            return "\(message.method ?? "") \(message.requestURIText ?? "") SIP/2.0"
        }
        return "SIP/2.0 \(message.statusCode) \(message.reasonPhrase ?? "")"
    }

    /// `*` matches any run of characters; everything else literally.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 1 { return pattern == text }
        var rest = Substring(text)
        for (index, part) in parts.enumerated() {
            if index == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if index == parts.count - 1 {
                return part.isEmpty || rest.hasSuffix(part)
            } else if !part.isEmpty {
                guard let range = rest.range(of: part) else { return false }
                rest = rest[range.upperBound...]
            }
        }
        return true
    }

    static func summary(_ bytes: [UInt8]) -> String {
        let firstLine = bytes.prefix { $0 != 0x0D && $0 != 0x0A }
        let text = String(decoding: firstLine.prefix(70), as: UTF8.self)
        let printable = text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
        let shown = printable ? text : "<\(bytes.count) bytes of binary>"
        return bytes.count > 1_500 ? "\(shown) (\(bytes.count) bytes)" : shown
    }

    static func token(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }
}
