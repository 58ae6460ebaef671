import Testing
@testable import Routing

@Suite struct DialplanTests {
    struct Case: Sendable, CustomStringConvertible {
        var input: String
        var output: String
        var line: Int?
        var numberClass: NumberClass?
        var description: String { input }
    }

    static let translations: [Case] = [
        Case(input: "112", output: "112", line: 2, numberClass: .emergency),
        Case(input: "15", output: "+33115", line: 3, numberClass: .emergency),
        Case(input: "+33612345678", output: "+33612345678", line: 4),
        Case(input: "+12125550100", output: "+12125550100", line: 4),
        Case(input: "0033612345678", output: "+33612345678", line: 5, numberClass: .international),
        Case(input: "0044207123456", output: "+44207123456", line: 5, numberClass: .international),
        Case(input: "0899123456", output: "+33899123456", line: 6, numberClass: .premium),
        Case(input: "0612345678", output: "+33612345678", line: 7, numberClass: .national),
        Case(input: "0140000000", output: "+33140000000", line: 7, numberClass: .national),
        Case(input: "0800123456", output: "+33800123456", line: 7, numberClass: .national),
        Case(input: "1234", output: "+33140001234", line: 8, numberClass: .local),
        Case(input: "9999", output: "+33140009999", line: 8, numberClass: .local),
        Case(input: "0123", output: "0123", line: nil),
        Case(input: "061234567", output: "061234567", line: nil),
        Case(input: "06123456789", output: "06123456789", line: nil),
        Case(input: "36150000", output: "36150000", line: 9),
        Case(input: "alice", output: "alice", line: nil),
        Case(input: "", output: "", line: nil),
        Case(input: "1120", output: "+33140001120", line: 8, numberClass: .local),
        Case(input: "0112", output: "0112", line: nil),
    ]

    @Test(arguments: translations)
    func translation(_ expected: Case) {
        let result = standardDialplans["users"]!.translate(expected.input)
        #expect(result.output == expected.output)
        #expect(result.rule?.line == expected.line)
        #expect(result.numberClass == expected.numberClass)
    }

    @Test func trunkAttributeAndDeny() {
        let inbound = standardDialplans["inbound"]!.translate("+12125550100")
        #expect(inbound.trunk == "telco")
        #expect(inbound.numberClass == .international)
        let denied = standardDialplans["users"]!.translate("36151234")
        #expect(denied.deny == "Minitel is closed")
        #expect(denied.explanation.contains("users.dialplan:9"))
    }

    @Test func priorityBeatsFileOrderAndTiesKeepFileOrder() throws {
        let text = """
        50 prefix 06 +AAA
        10 prefix 0  +BBB
        10 prefix 06 +CCC
        """
        let plan = try DialplanSet.compile([("p.dialplan", text)]).get()["p"]!
        #expect(plan.translate("0612").output == "+BBB612")
        #expect(plan.translate("0712").output == "+BBB712")
    }

    @Test func exactRuleLosesToAnEarlierPrefixRule() throws {
        let text = """
        20 exact 123 +EXACT
        10 prefix 12 +PREFIX
        30 exact 999 +NINES
        """
        let plan = try DialplanSet.compile([("p.dialplan", text)]).get()["p"]!
        #expect(plan.translate("123").output == "+PREFIX3")
        #expect(plan.translate("999").output == "+NINES")
        #expect(plan.translate("12").output == "+PREFIX")
    }

    @Test func groupsAndEscapes() throws {
        func rewrite(_ text: String, _ expression: String, _ template: String) throws -> String? {
            try CompiledPattern(expression).apply(text, template: DialplanRule.compile(template: template))
        }
        #expect(try rewrite("0612", "^0(6.*)$", "+33\\1") == "+33612")
        #expect(try rewrite("ab", "^(a)(c)?", "\\0-\\2") == "a-")
        #expect(try rewrite("ab", "^(a)(b)$", "\\2\\1\\2") == "bab")
        #expect(try rewrite("a", "a", "x\\") == "x\\")
        #expect(try rewrite("a", "a", "\\x") == "\\x")
        #expect(try rewrite("é12", "^é([0-9]+)$", "<\\1>") == "<12>")
        #expect(try rewrite("b", "a", "\\0") == nil)
    }

    struct Broken: Sendable, CustomStringConvertible {
        var line: String
        var reason: String
        var description: String { line }
    }

    static let broken: [Broken] = [
        Broken(line: "10 exact 112", reason: "found 3 field(s)"),
        Broken(line: "x exact 112 -", reason: "priority 'x'"),
        Broken(line: "-1 exact 112 -", reason: "priority '-1'"),
        Broken(line: "10 glob 112 -", reason: "match 'glob'"),
        Broken(line: "10 exact 1a2 -", reason: "may hold only digits"),
        Broken(line: "10 prefix 0-1 -", reason: "may hold only digits"),
        Broken(line: "10 regex ^0([1-9]$ -", reason: "invalid regular expression"),
        Broken(line: "10 regex ^0([1-9])$ +33\\2", reason: "refers to \\2"),
        // glibc copies a repeated operand per repetition: these would take gigabytes (found by fuzzing).
        Broken(line: "10 regex ^0" + String(repeating: "+", count: 100) + "([1-9])$ -", reason: "a repetition of a repetition"),
        Broken(line: "10 regex ^0{2}*$ -", reason: "a repetition of a repetition"),
        Broken(line: "10 regex ^(((0{200}){200}){200})$ -", reason: "repeats too much"),
        Broken(line: "10 regex ^0{300}$ -", reason: "count is above 255"),
        Broken(line: "10 exact 112 - class=urgent", reason: "class 'urgent'"),
        Broken(line: "10 exact 112 - route=telco", reason: "route 'telco'"),
        Broken(line: "10 exact 112 - colour=red", reason: "unknown attribute 'colour'"),
        Broken(line: "10 exact 112 - class", reason: "not key=value"),
        Broken(line: "10 exact 112 - deny=", reason: "deny needs a reason"),
        Broken(line: "10 exact 112 - class=emergency deny=no", reason: "emergency destination cannot be denied"),
        Broken(line: "10 exact 112 - deny=\"open", reason: "unterminated quote"),
        Broken(line: "10 exact 112 <sip:x>", reason: "may not hold"),
    ]

    /// What real dialplans write stays accepted.
    @Test(arguments: ["^0([1-9][0-9]{8})$", "^(00|\\+)?(33)?([0-9]{9,15})$", "^[0-9]+$", "^(\\*|#)[0-9]{2,4}#?$", "^0[67][0-9]{8}$",
                      "^([0-9]{3}){3}$", "^1[0-9]{0,}$", "^[]0-9]+$"])
    func everydayPatternsCompile(_ pattern: String) {
        #expect(CompiledPattern.refusal(of: pattern) == nil)
    }

    @Test(arguments: broken)
    func rejected(_ broken: Broken) {
        let text = "# header\n\n\(broken.line)\n"
        guard case .failure(let problems) = DialplanSet.compile([("bad.dialplan", text)]) else {
            Issue.record("accepted: \(broken.line)")
            return
        }
        let errors = problems.errors
        #expect(errors.count == 1)
        #expect(errors.first?.file == "bad.dialplan")
        #expect(errors.first?.line == 3)
        #expect(errors.first?.reason.contains(broken.reason) == true, "\(errors.first?.reason ?? "")")
    }

    @Test func everyErrorIsReportedAndNamesAreChecked() {
        guard case .failure(let problems) = DialplanSet.compile([
            ("a.dialplan", "10 exact 1 -\nbad\n10 glob 1 -"), ("b c.dialplan", "10 exact 1 -"), ("notes.txt", "ignored"),
        ]) else {
            Issue.record("accepted")
            return
        }
        #expect(problems.errors.map(\.description) == [
            "a.dialplan:2: expected PRIORITY MATCH PATTERN REPLACEMENT [ATTRIBUTES], found 1 field(s)",
            "a.dialplan:3: match 'glob' is not exact, prefix or regex",
            "b c.dialplan: a dialplan name is letters, digits, '_' or '-'",
        ])
    }

    @Test func commentsAndQuotes() throws {
        let set = try DialplanSet.compile([("q.dialplan", "10 prefix 3615 - deny=\"Minitel is closed\" # gone since 2012\n  # only a comment\n")]).get()
        #expect(set["q"]!.rules.count == 1)
        #expect(set["q"]!.translate("36150").deny == "Minitel is closed")
        #expect(set.names == ["q"])
        #expect(set.ruleCount == 1)
    }
}
