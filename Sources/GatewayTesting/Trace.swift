import Foundation
import SIPTransport

/// A parsed trace file: declared peers and the steps to play (format: docs/traces.md).
public struct Trace: Sendable {
    public struct Peer: Sendable, Equatable {
        public var name: String
        public var transport: TransportKind
        public var address: SocketAddress
    }

    public enum SendMode: Sendable, Equatable {
        /// LF → CRLF, variables expanded, `Content-Length: auto` computed, a final blank line ensured.
        case message
        /// LF → CRLF and variables, nothing else: for malformed and pipelined input.
        case raw
        /// Hexadecimal bytes, white space ignored: for binary garbage.
        case hex
    }

    public enum Step: Sendable {
        case send(peer: String, mode: SendMode, chunkSize: Int?, text: String, line: Int)
        case expect(peer: String, template: String, line: Int)
        case expectNothing(peer: String?, within: Double, line: Int)
        case expectClosed(peer: String, line: Int)
        case expectPong(peer: String, line: Int)
        case close(peer: String, line: Int)
        case wait(seconds: Double, line: Int)
        case set(name: String, value: String, line: Int)
        /// An admin call (JSON-RPC method and JSON params, variables expanded) that must succeed; with
        /// `error`, it must fail with that error code.
        case admin(method: String, params: String, expectError: Int?, resultPattern: String?, line: Int)
        /// Computes a digest `Authorization` value (RFC 7616, qop=auth) into a variable.
        case digest(name: String, fields: [String: String], line: Int)
    }

    public struct Dialplan: Sendable {
        public var name: String
        public var text: String
        /// The line of the `dialplan` directive: a rule on line N of the block is on line `line + N`.
        public var line: Int
    }

    public var name: String
    public var peers: [Peer] = []
    public var gateway: [ListenPoint] = []
    /// `config section.key = value` lines: applied in-process; `tandem-replay` lists them as requirements.
    public var configuration: [String] = []
    /// `timing virtual`: the trace checks exact timer behaviour that only virtual time reproduces;
    /// `tandem-replay` skips it unless asked to include it.
    public var needsVirtualTime = false
    /// The trace provisions through the admin socket: over sockets it needs a tandem of its own.
    public var usesAdmin = false
    /// `dialplan NAME` blocks: the dialplans in force for this trace (in-process they replace the
    /// gateway's; over sockets `tools/replay-check` writes them to the tandem's `routing.dialplans`).
    public var dialplans: [Dialplan] = []
    public var steps: [Step] = []

    public struct ParseError: Error, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var reason: String
        public var description: String { "\(file):\(line): \(reason)" }
    }

    public static func load(path: String) throws -> Trace {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ParseError(file: path, line: 0, reason: "cannot read the trace")
        }
        return try parse(text, name: path)
    }

    public static func parse(_ text: String, name: String) throws -> Trace {
        var trace = Trace(name: name)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
        func fail(_ line: Int, _ reason: String) -> ParseError { ParseError(file: name, line: line, reason: reason) }
        func peerName(_ word: String, _ line: Int) throws -> String {
            guard trace.peers.contains(where: { $0.name == word }) else { throw fail(line, "unknown peer '\(word)'") }
            return word
        }
        /// A block runs from the line after its directive to a line holding a single `.`.
        func block(from start: Int) throws -> (String, Int) {
            var body: [String] = []
            var index = start
            while index < lines.count {
                if lines[index] == "." { return (body.joined(separator: "\n"), index + 1) }
                body.append(lines[index])
                index += 1
            }
            throw fail(start, "message block is not closed by a line holding a single '.'")
        }
        var index = 0
        while index < lines.count {
            let lineNumber = index + 1
            let line = lines[index].trimmingCharacters(in: .whitespaces)
            index += 1
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            switch words[0] {
            case "peer":
                guard words.count == 4, let transport = TransportKind(rawValue: words[2].lowercased()) else {
                    throw fail(lineNumber, "expected 'peer NAME udp|tcp HOST:PORT'")
                }
                guard let point = try? ListenPoint(parsing: "\(words[2]):\(words[3])") else {
                    throw fail(lineNumber, "'\(words[3])' is not HOST:PORT with an IP address")
                }
                guard !["gateway"].contains(words[1]), !trace.peers.contains(where: { $0.name == words[1] }) else {
                    throw fail(lineNumber, "peer name '\(words[1])' is taken")
                }
                trace.peers.append(Peer(name: words[1], transport: transport, address: point.address))
            case "gateway":
                guard words.count >= 2 else { throw fail(lineNumber, "expected 'gateway udp:HOST:PORT [tcp:HOST:PORT]'") }
                for word in words.dropFirst() {
                    guard let point = try? ListenPoint(parsing: word) else {
                        throw fail(lineNumber, "'\(word)' is not a listen point such as udp:127.0.0.1:5060")
                    }
                    trace.gateway.append(point)
                }
            case "timing":
                guard words.count == 2, words[1] == "virtual" else { throw fail(lineNumber, "expected 'timing virtual'") }
                trace.needsVirtualTime = true
            case "config":
                let rest = line.dropFirst("config".count).trimmingCharacters(in: .whitespaces)
                guard rest.contains("=") else { throw fail(lineNumber, "expected 'config section.key = value'") }
                trace.configuration.append(rest)
            case "dialplan":
                guard words.count == 2 else { throw fail(lineNumber, "expected 'dialplan NAME' and the rules up to a line holding '.'") }
                guard !trace.dialplans.contains(where: { $0.name == words[1] }) else {
                    throw fail(lineNumber, "dialplan '\(words[1])' is defined twice")
                }
                let (text, next) = try block(from: index)
                trace.dialplans.append(Dialplan(name: words[1], text: text, line: lineNumber))
                index = next
            case "send":
                guard words.count >= 2 else { throw fail(lineNumber, "expected 'send PEER [raw|hex] [chunks=N]'") }
                let peer = try peerName(words[1], lineNumber)
                var mode = SendMode.message
                var chunk: Int?
                for option in words.dropFirst(2) {
                    switch option {
                    case "raw": mode = .raw
                    case "hex": mode = .hex
                    case _ where option.hasPrefix("chunks="):
                        guard let size = Int(option.dropFirst("chunks=".count)), size > 0 else {
                            throw fail(lineNumber, "chunks= takes a positive number of bytes")
                        }
                        chunk = size
                    default: throw fail(lineNumber, "unknown send option '\(option)'")
                    }
                }
                let (text, next) = try block(from: index)
                trace.steps.append(.send(peer: peer, mode: mode, chunkSize: chunk, text: text, line: lineNumber))
                index = next
            case "expect":
                guard words.count >= 2 else { throw fail(lineNumber, "expected 'expect PEER', 'expect closed PEER' or 'expect nothing'") }
                if words[1] == "nothing" {
                    var peer: String?
                    var within = 0.3
                    var rest = Array(words.dropFirst(2))
                    if let first = rest.first, first != "within" {
                        peer = try peerName(first, lineNumber)
                        rest.removeFirst()
                    }
                    if rest.first == "within" {
                        guard rest.count == 2, let seconds = duration(rest[1]) else {
                            throw fail(lineNumber, "expected 'within DURATION' such as 500ms or 2s")
                        }
                        within = seconds
                    }
                    trace.steps.append(.expectNothing(peer: peer, within: within, line: lineNumber))
                } else if words[1] == "pong" {
                    guard words.count == 3 else { throw fail(lineNumber, "expected 'expect pong PEER'") }
                    trace.steps.append(.expectPong(peer: try peerName(words[2], lineNumber), line: lineNumber))
                } else if words[1] == "closed" {
                    guard words.count == 3 else { throw fail(lineNumber, "expected 'expect closed PEER'") }
                    trace.steps.append(.expectClosed(peer: try peerName(words[2], lineNumber), line: lineNumber))
                } else {
                    let peer = try peerName(words[1], lineNumber)
                    let (text, next) = try block(from: index)
                    trace.steps.append(.expect(peer: peer, template: text, line: lineNumber))
                    index = next
                }
            case "close":
                guard words.count == 2 else { throw fail(lineNumber, "expected 'close PEER'") }
                trace.steps.append(.close(peer: try peerName(words[1], lineNumber), line: lineNumber))
            case "wait":
                guard words.count == 2, let seconds = duration(words[1]) else {
                    throw fail(lineNumber, "expected 'wait DURATION' such as 500ms or 32s")
                }
                trace.steps.append(.wait(seconds: seconds, line: lineNumber))
            case "set":
                let rest = line.dropFirst("set".count)
                guard let equals = rest.firstIndex(of: "=") else { throw fail(lineNumber, "expected 'set NAME = VALUE'") }
                let name = rest[..<equals].trimmingCharacters(in: .whitespaces)
                let value = rest[rest.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                trace.steps.append(.set(name: name, value: value, line: lineNumber))
            case "admin":
                // admin METHOD [error=CODE] [JSON params]
                guard words.count >= 2 else { throw fail(lineNumber, "expected 'admin METHOD [error=CODE] [JSON]'") }
                var rest: String = line.dropFirst("admin".count).trimmingCharacters(in: .whitespaces).dropFirst(words[1].count)
                    .trimmingCharacters(in: .whitespaces)
                var expectError: Int?
                if rest.hasPrefix("error=") {
                    let code = rest.dropFirst("error=".count).prefix { $0 != " " }
                    guard let value = Int(code) else { throw fail(lineNumber, "error= takes a JSON-RPC error code") }
                    expectError = value
                    rest = rest.dropFirst("error=".count + code.count).trimmingCharacters(in: .whitespaces)
                }
                var pattern: String?
                if let arrow = rest.range(of: " => ") {
                    pattern = String(rest[arrow.upperBound...]).trimmingCharacters(in: .whitespaces)
                    rest = String(rest[..<arrow.lowerBound])
                } else if rest.hasPrefix("=> ") {
                    pattern = String(rest.dropFirst(3)).trimmingCharacters(in: .whitespaces)
                    rest = ""
                }
                trace.usesAdmin = true
                trace.steps.append(.admin(method: words[1], params: rest.isEmpty ? "{}" : rest, expectError: expectError,
                                          resultPattern: pattern, line: lineNumber))
            case "digest":
                // digest NAME key=value…: user, password, method, uri, nonce; realm, algorithm, nc, cnonce optional
                guard words.count >= 3 else { throw fail(lineNumber, "expected 'digest NAME user=… password=… method=… uri=… nonce=…'") }
                var fields: [String: String] = [:]
                for word in words.dropFirst(2) {
                    guard let equals = word.firstIndex(of: "=") else { throw fail(lineNumber, "'\(word)' is not key=value") }
                    fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
                }
                for required in ["user", "password", "method", "uri", "nonce"] where fields[required] == nil {
                    throw fail(lineNumber, "digest needs \(required)=")
                }
                trace.steps.append(.digest(name: words[1], fields: fields, line: lineNumber))
            default:
                throw fail(lineNumber, "unknown directive '\(words[0])'")
            }
        }
        if trace.gateway.isEmpty {
            trace.gateway = [
                ListenPoint(transport: .udp, address: SocketAddress(host: "127.0.0.1", port: 5060)),
                ListenPoint(transport: .tcp, address: SocketAddress(host: "127.0.0.1", port: 5060)),
            ]
        }
        return trace
    }

    /// `500ms`, `2s`, `1.5s`, `3m`.
    static func duration(_ text: String) -> Double? {
        if text.hasSuffix("ms") { return Double(text.dropLast(2)).map { $0 / 1000 } }
        if text.hasSuffix("s") { return Double(text.dropLast()) }
        if text.hasSuffix("m") { return Double(text.dropLast()).map { $0 * 60 } }
        return nil
    }
}
