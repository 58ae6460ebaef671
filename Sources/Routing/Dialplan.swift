#if canImport(Glibc)
import Glibc
#endif

/// What a dialplan rule says a destination is. Emergency destinations are never blocked; the
/// others need the matching grant (`international`, `premium`) of a calling user.
public enum NumberClass: String, Sendable, CaseIterable {
    case emergency, premium, international, national, local
}

/// One rule of a dialplan, in the spirit of Kamailio's dialplan module (`pr`, `match_op`,
/// `match_exp`, `repl_exp`, `attrs`), compiled once when the file is loaded.
public struct DialplanRule: Sendable {
    public enum Match: Sendable {
        case exact(String)
        case prefix(String)
        case regex(CompiledPattern)
    }

    public var priority: Int
    public var match: Match
    /// The pattern as written, for explanations.
    public var pattern: String
    /// The replacement template, or nil (`-`) to keep the number as it is.
    public var replacement: String?
    public var numberClass: NumberClass?
    /// `route=trunk:ID`: the carrier provider whose hops take the call.
    public var trunk: String?
    /// `deny=REASON`: the destination is refused with 403 and this reason.
    public var deny: String?
    public var file: String
    public var line: Int

    public var matchKind: String {
        switch match {
        case .exact: "exact"
        case .prefix: "prefix"
        case .regex: "regex"
        }
    }

    /// The rule's result for `number`, or nil when it does not match.
    /// The replacement compiled: literal bytes and capture group references (`\0`–`\9`).
    enum Part: Sendable {
        case literal([UInt8])
        case group(Int)
    }
    var template: [Part] = []

    /// `\0` … `\9` in the template become group references; a backslash before anything else
    /// (or at the end) stands for itself.
    static func compile(template: String) -> [Part] {
        var parts: [Part] = []
        var literal: [UInt8] = []
        var escaped = false
        for byte in template.utf8 {
            if escaped {
                escaped = false
                if (48...57).contains(byte) {
                    if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
                    parts.append(.group(Int(byte - 48)))
                    continue
                }
                literal.append(92)
            }
            if byte == 92 { escaped = true } else { literal.append(byte) }
        }
        if escaped { literal.append(92) }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        return parts
    }

    func apply(_ number: String) -> String? {
        switch match {
        case .exact(let text):
            guard number == text else { return nil }
            return replacement ?? number
        case .prefix(let text):
            guard number.utf8.starts(with: text.utf8) else { return nil }
            guard let replacement else { return number }
            return replacement + String(Substring(number.utf8.dropFirst(text.utf8.count)))
        case .regex(let pattern):
            return pattern.apply(number, template: replacement == nil ? nil : template)
        }
    }
}

/// A POSIX extended regular expression compiled once (glibc's matcher: no dependency, captures
/// groups, safe to share between threads for matching).
public final class CompiledPattern: @unchecked Sendable {
    private var regex = regex_t()
    public let groupCount: Int

    /// Compiles `pattern`, or throws the matcher's own reason.
    init(_ pattern: String) throws(DialplanError.Reason) {
        if let refusal = Self.refusal(of: pattern) { throw DialplanError.Reason("invalid regular expression: \(refusal)") }
        let status = regcomp(&regex, pattern, REG_EXTENDED)
        guard status == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(status, &regex, &buffer, buffer.count)
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw DialplanError.Reason("invalid regular expression: \(text)")
        }
        groupCount = Int(regex.re_nsub)
    }

    deinit { regfree(&regex) }

    /// Most automaton nodes a pattern may expand to, counted as glibc's compiler expands it: each
    /// `{n,m}` copies its operand m times and `+` twice, nested copies multiply.
    static let maximumSize = 10_000
    static let maximumCount = 255

    /// Why `pattern` is refused before glibc sees it, or nil. glibc's regcomp copies a repeated
    /// operand once per repetition, so stacked or nested repetitions (`0+++…+`, `((a{200}){200}){200}`)
    /// take memory exponential in their length: one line of a dialplan reload could take the
    /// gateway's memory (found by the dialplan fuzz target). POSIX leaves a repetition of a
    /// repetition undefined anyway.
    static func refusal(of pattern: String) -> String? {
        let bytes = Array(pattern.utf8)
        var sizes: [Int] = [0]          // size of the sequence at each open group depth
        var last: Int?                   // size of the last atom at this depth, which a quantifier repeats
        var afterQuantifier = false
        var index = 0
        func repeatLast(_ factor: Int) -> String? {
            guard !afterQuantifier else { return "a repetition of a repetition (like a++ or a{2}*) is not allowed" }
            guard let atom = last else { return "a repetition with nothing to repeat" }
            sizes[sizes.count - 1] += atom * (factor - 1)
            last = atom * factor
            afterQuantifier = true
            return sizes[sizes.count - 1] > maximumSize ? "it repeats too much (over \(maximumSize) states)" : nil
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\\"):
                index += 2
                sizes[sizes.count - 1] += 1
                last = 1
                afterQuantifier = false
                continue
            case UInt8(ascii: "["):
                var end = index + 1
                if end < bytes.count, bytes[end] == UInt8(ascii: "^") { end += 1 }
                if end < bytes.count, bytes[end] == UInt8(ascii: "]") { end += 1 }
                while end < bytes.count, bytes[end] != UInt8(ascii: "]") { end += 1 }
                index = end + 1
                sizes[sizes.count - 1] += 1
                last = 1
                afterQuantifier = false
                continue
            case UInt8(ascii: "("):
                sizes.append(0)
                last = nil
                afterQuantifier = false
            case UInt8(ascii: ")"):
                guard sizes.count > 1 else { break }
                let group = sizes.removeLast() + 1
                sizes[sizes.count - 1] += group
                last = group
                afterQuantifier = false
            case UInt8(ascii: "|"):
                last = nil
                afterQuantifier = false
            case UInt8(ascii: "*"), UInt8(ascii: "?"):
                if let refusal = repeatLast(1) { return refusal }
            case UInt8(ascii: "+"):
                if let refusal = repeatLast(2) { return refusal }
            case UInt8(ascii: "{"):
                guard let close = bytes[index...].firstIndex(of: UInt8(ascii: "}")) else { break }
                let counts = String(decoding: bytes[(index + 1)..<close], as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
                guard (1...2).contains(counts.count), counts.allSatisfy({ $0.isEmpty || Int($0) != nil }) else { break }
                let numbers = counts.compactMap { Int($0) }
                guard numbers.allSatisfy({ $0 <= maximumCount }) else { return "a repetition count is above \(maximumCount)" }
                let factor = max(1, (counts.count == 2 && counts[1].isEmpty) ? (numbers.first ?? 0) + 1 : numbers.max() ?? 1)
                if let refusal = repeatLast(factor) { return refusal }
                index = close + 1
                continue
            default:
                sizes[sizes.count - 1] += 1
                last = 1
                afterQuantifier = false
            }
            index += 1
        }
        return nil
    }

    /// `text` rewritten by `template` when the expression matches it (`text` itself without a
    /// template), or nil. Groups that did not take part stand for nothing.
    func apply(_ text: String, template: [DialplanRule.Part]?) -> String? {
        let count = min(groupCount + 1, 10)
        return withUnsafeTemporaryAllocation(of: regmatch_t.self, capacity: count) { matches -> String? in
            var text = text
            return text.withUTF8 { bytes -> String? in
                let status = withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { terminated -> Int32 in
                    bytes.withMemoryRebound(to: CChar.self) { _ = terminated.initialize(fromContentsOf: $0) }
                    terminated[bytes.count] = 0
                    return regexec(&regex, terminated.baseAddress, count, matches.baseAddress, 0)
                }
                guard status == 0 else { return nil }
                guard let template else { return String(decoding: bytes, as: UTF8.self) }
                var result: [UInt8] = []
                result.reserveCapacity(bytes.count + 8)
                for part in template {
                    switch part {
                    case .literal(let literal):
                        result.append(contentsOf: literal)
                    case .group(let index):
                        guard index < count, matches[index].rm_so >= 0 else { continue }
                        result.append(contentsOf: bytes[Int(matches[index].rm_so)..<Int(matches[index].rm_eo)])
                    }
                }
                return String(decoding: result, as: UTF8.self)
            }
        }
    }
}

/// What a dialplan made of a number: the first rule that matched, in priority order.
public struct Translation: Sendable {
    public var dialplan: String
    public var input: String
    public var output: String
    public var rule: DialplanRule?

    public var numberClass: NumberClass? { rule?.numberClass }
    public var trunk: String? { rule?.trunk }
    public var deny: String? { rule?.deny }

    /// `users.dialplan:12 (prefix 0, priority 20) → +33612345678`.
    public var explanation: String {
        guard let rule else { return "no rule of '\(dialplan)' matches \(input); kept as it is" }
        var text = "\(rule.file):\(rule.line) (\(rule.matchKind) \(rule.pattern), priority \(rule.priority)) turns \(input) into \(output)"
        if let numberClass = rule.numberClass { text += ", class=\(numberClass.rawValue)" }
        if let trunk = rule.trunk { text += ", route=trunk:\(trunk)" }
        if let deny = rule.deny { text += ", deny=\"\(deny)\"" }
        return text
    }
}

/// A named, ordered list of rules: one `NAME.dialplan` file.
public struct Dialplan: Sendable {
    public var name: String
    /// Sorted by priority, then by line: the first match wins.
    public var rules: [DialplanRule]
    /// Exact rules by their number, each with its position in `rules`: an exact rule is found by one
    /// lookup instead of a scan, and still loses to any earlier rule that matches.
    var exactIndex: [String: Int] = [:]

    init(name: String, rules: [DialplanRule]) {
        self.name = name
        self.rules = rules.enumerated().sorted { ($0.element.priority, $0.offset) < ($1.element.priority, $1.offset) }.map(\.element)
        for (index, rule) in self.rules.enumerated() {
            if case .exact(let text) = rule.match, exactIndex[text] == nil { exactIndex[text] = index }
        }
    }

    public func translate(_ number: String) -> Translation {
        let exact = exactIndex[number] ?? rules.count
        // Rules are read in place; only the one that matches is copied into the translation.
        for index in 0..<exact {
            if case .exact = rules[index].match { continue }
            if let output = rules[index].apply(number) {
                return Translation(dialplan: name, input: number, output: output, rule: rules[index])
            }
        }
        if exact < rules.count, let output = rules[exact].apply(number) {
            return Translation(dialplan: name, input: number, output: output, rule: rules[exact])
        }
        return Translation(dialplan: name, input: number, output: number, rule: nil)
    }
}

/// A problem in a dialplan file, with where it is.
public struct DialplanError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Reason: Error { var text: String; init(_ text: String) { self.text = text } }
    public var file: String
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)" }
}

/// Every problem of a set of dialplan files.
public struct DialplanProblems: Error, Sendable, CustomStringConvertible {
    public var errors: [DialplanError]
    public init(errors: [DialplanError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "; ") }
}

/// Why a reload left the previous dialplans in force.
public enum DialplanReloadError: Error, Sendable, CustomStringConvertible {
    /// Reloads are at most one a second.
    case tooSoon(retryAfter: Int64)
    case invalid(DialplanProblems)

    public var description: String {
        switch self {
        case .tooSoon(let wait): "a reload ran less than a second ago; retry in \(wait) ms"
        case .invalid(let problems): "dialplans not reloaded, the previous ones stay in force: \(problems)"
        }
    }
}

/// Every loaded dialplan, by name.
public struct DialplanSet: Sendable {
    public private(set) var plans: [String: Dialplan] = [:]
    public init() {}

    public subscript(name: String) -> Dialplan? { plans[name] }
    public var names: [String] { plans.keys.sorted() }
    public var ruleCount: Int { plans.values.reduce(0) { $0 + $1.rules.count } }

    /// Parses and compiles `files` (file name `NAME.dialplan` and its text). Every problem is
    /// reported, not only the first, so one edit fixes them all; any problem rejects the whole set.
    public static func compile(_ files: [(name: String, text: String)]) -> Result<DialplanSet, DialplanProblems> {
        var set = DialplanSet()
        var errors: [DialplanError] = []
        for file in files.sorted(by: { $0.name < $1.name }) {
            guard file.name.hasSuffix(".dialplan") else { continue }
            let name = String(file.name.dropLast(".dialplan".count))
            guard !name.isEmpty, name.utf8.allSatisfy({ isWordByte($0) }) else {
                errors.append(DialplanError(file: file.name, line: 0, reason: "a dialplan name is letters, digits, '_' or '-'"))
                continue
            }
            var rules: [DialplanRule] = []
            for (index, raw) in file.text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                do throws(DialplanError.Reason) {
                    if let rule = try parseRule(raw, file: file.name, line: index + 1) { rules.append(rule) }
                } catch {
                    errors.append(DialplanError(file: file.name, line: index + 1, reason: error.text))
                }
            }
            set.plans[name] = Dialplan(name: name, rules: rules)
        }
        return errors.isEmpty ? .success(set) : .failure(DialplanProblems(errors: errors))
    }

    public static func isWordByte(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 95 || byte == 45
    }

    /// `PRIORITY MATCH PATTERN REPLACEMENT [key=value …]`; `#` starts a comment.
    static func parseRule(_ raw: Substring, file: String, line: Int) throws(DialplanError.Reason) -> DialplanRule? {
        let fields = try tokens(raw)
        guard !fields.isEmpty else { return nil }
        guard fields.count >= 4 else {
            throw .init("expected PRIORITY MATCH PATTERN REPLACEMENT [ATTRIBUTES], found \(fields.count) field(s)")
        }
        guard let priority = Int(fields[0]), (0...999_999).contains(priority) else {
            throw .init("priority '\(fields[0])' is not a number from 0 to 999999")
        }
        let pattern = fields[2]
        let replacement = fields[3] == "-" ? nil : fields[3]
        let match: DialplanRule.Match
        switch fields[1] {
        case "exact", "prefix":
            guard pattern.utf8.allSatisfy({ (48...57).contains($0) || [43, 42, 35].contains($0) }) else {
                throw .init("\(fields[1]) pattern '\(pattern)' may hold only digits, '+', '*' and '#'")
            }
            match = fields[1] == "exact" ? .exact(pattern) : .prefix(pattern)
        case "regex":
            let compiled = try CompiledPattern(pattern)
            if let replacement {
                let referenced = Self.references(in: replacement)
                if let group = referenced.first(where: { $0 > compiled.groupCount }) {
                    throw .init("replacement refers to \\\(group) but the expression has \(compiled.groupCount) group(s)")
                }
            }
            match = .regex(compiled)
        default:
            throw .init("match '\(fields[1])' is not exact, prefix or regex")
        }
        if let replacement, replacement.contains(where: { $0 == "<" || $0 == ">" || $0 == "@" || $0 == ";" }) {
            throw .init("replacement '\(replacement)' may not hold '<', '>', '@' or ';'")
        }
        var rule = DialplanRule(priority: priority, match: match, pattern: pattern, replacement: replacement, numberClass: nil,
                                trunk: nil, deny: nil, file: file, line: line)
        rule.template = replacement.map { DialplanRule.compile(template: $0) } ?? []
        for attribute in fields.dropFirst(4) {
            guard let equals = attribute.firstIndex(of: "=") else { throw .init("attribute '\(attribute)' is not key=value") }
            let key = attribute[..<equals], value = String(attribute[attribute.index(after: equals)...])
            switch key {
            case "class":
                guard let numberClass = NumberClass(rawValue: value) else {
                    throw .init("class '\(value)' is not one of \(NumberClass.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                rule.numberClass = numberClass
            case "route":
                guard value.hasPrefix("trunk:"), value.count > 6, value.dropFirst(6).utf8.allSatisfy({ isWordByte($0) || $0 == 46 }) else {
                    throw .init("route '\(value)' is not trunk:PROVIDER_ID")
                }
                rule.trunk = String(value.dropFirst(6))
            case "deny":
                guard !value.isEmpty, value.count <= 100, !value.unicodeScalars.contains(where: { $0.value < 32 }) else {
                    throw .init("deny needs a reason of 1 to 100 printable characters")
                }
                rule.deny = value
            default:
                throw .init("unknown attribute '\(key)' (expected class, route, deny)")
            }
        }
        if rule.deny != nil && rule.numberClass == .emergency {
            throw .init("an emergency destination cannot be denied")
        }
        return rule
    }

    /// Whitespace-separated fields; `"…"` quotes a field holding spaces (`deny="Premium barred"`);
    /// an unquoted `#` starts a comment.
    static func tokens(_ line: Substring) throws(DialplanError.Reason) -> [String] {
        var fields: [String] = []
        var current = ""
        var inQuotes = false, started = false
        for character in line {
            if inQuotes {
                if character == "\"" { inQuotes = false } else { current.append(character) }
                continue
            }
            switch character {
            case "#":
                if started { fields.append(current) }
                return fields
            case " ", "\t", "\r":
                if started { fields.append(current) }
                current = ""
                started = false
            case "\"":
                inQuotes = true
                started = true
            default:
                current.append(character)
                started = true
            }
        }
        guard !inQuotes else { throw .init("unterminated quote") }
        if started { fields.append(current) }
        return fields
    }

    static func references(in template: String) -> [Int] {
        var result: [Int] = []
        var escaped = false
        for character in template {
            if escaped, let digit = character.wholeNumberValue { result.append(digit) }
            escaped = !escaped && character == "\\"
        }
        return result
    }
}
