import Foundation
import Gateway
import SIPTransport
import Testing

@Suite struct ConfigurationTests {
    @Test func emptyFileGivesDefaults() throws {
        let configuration = try Configuration.parse("", file: "t.conf")
        #expect(configuration == Configuration())
        #expect(configuration.listen.map(\.description) == ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"])
        #expect(configuration.maxMessageSize == 65_535)
    }

    @Test func valuesCommentsAndQuotes() throws {
        let configuration = try Configuration.parse("""
        # a comment
        [sip]
        listen = udp:0.0.0.0:5080, tcp:[::1]:5081   # inline comment
        domain = Tandem.Example.com
        advertise = 192.0.2.1
        server_header = "Tandem; lab"
        [log]
        ; another comment
        level = debug
        """, file: "t.conf")
        #expect(configuration.listen.map(\.description) == ["udp:0.0.0.0:5080", "tcp:[::1]:5081"])
        #expect(configuration.domain == "tandem.example.com")
        #expect(configuration.serverHeader == "Tandem; lab")
        #expect(configuration.logLevel == .debug)
    }

    @Test(arguments: [
        ("[sip]\nlisten = udp:127.0.0.1:5060\nbogus = 1\n", 3, "sip.bogus: unknown key"),
        ("[sip]\nmax_message_size = 12\n", 2, "sip.max_message_size: '12' is not a whole number from 512 to 65535"),
        ("[nope]\n", 1, "unknown section [nope]"),
        ("listen = udp:1.2.3.4:5060\n", 1, "key outside of any [section]"),
        ("[sip]\nlisten = sctp:1.2.3.4\n", 2, "sip.listen: unknown transport 'sctp'"),
        ("[sip]\nlisten = udp:example.com:5060\n", 2, "sip.listen: 'example.com' in 'udp:example.com:5060' is not an IPv4 or IPv6 address"),
        ("[sip]\nlisten = udp:1.2.3.4:70000\n", 2, "sip.listen: port '70000'"),
        ("[sip]\nlisten = udp:1.2.3.4:5060, udp:1.2.3.4:5060\n", 2, "sip.listen: a listen point is listed twice"),
        ("[log]\nlevel = loud\n", 2, "log.level: 'loud' is not one of"),
        ("[log]\nlevel = info\nlevel = debug\n", 3, "log.level is already set on line 2"),
        ("[sip\n", 1, "section header must end with ']'"),
        ("[sip]\n\nlisten = udp:0.0.0.0:5060\n", 3, "sip.listen: udp:0.0.0.0:5060 listens on every address; set sip.advertise"),
        ("[sip]\nadvertise = a b\n", 2, "sip.advertise: 'a b' is not a host name or IP address"),
        ("[sip]\njust words\n", 2, "expected 'key = value'"),
    ])
    func badInputNamesFileAndLine(text: String, line: Int, reason: String) {
        do {
            _ = try Configuration.parse(text, file: "Config/x.conf")
            Issue.record("accepted invalid configuration")
        } catch {
            #expect(error.file == "Config/x.conf")
            #expect(error.line == line)
            #expect(error.reason.hasPrefix(reason), "\(error.reason)")
        }
    }

    @Test func wildcardListenWithAdvertisedAddress() throws {
        let configuration = try Configuration.parse("[sip]\nlisten = udp:0.0.0.0:5060\nadvertise = sip.example.net\n", file: "t.conf")
        #expect(configuration.advertise == "sip.example.net")
    }

    @Test func overridesApplyAfterTheFileAndNameTheOption() throws {
        let configuration = try Configuration.parse("[log]\nlevel = info\n", file: "t.conf", overrides: ["log.level=error"])
        #expect(configuration.logLevel == .error)
        do {
            _ = try Configuration.parse("", file: "t.conf", overrides: ["sip.udp_workers=many"])
            Issue.record("accepted invalid override")
        } catch {
            #expect(error.description == "--set sip.udp_workers=many: sip.udp_workers: 'many' is not a whole number from 0 to 256")
        }
    }

    @Test func shippedConfigurationIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try Configuration.load(file: root.appendingPathComponent("Config/tandem.conf").path)
        #expect(configuration.storagePath == "var/tandem.db")
    }

    /// docs/configuration.md must describe every key the code accepts, and no key it does not.
    @Test func everyKeyIsDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for key in Configuration.keys {
            #expect(doc.contains("`\(key.name)`"), "docs/configuration.md does not document \(key.name)")
        }
        let documented = doc.split(separator: "\n").filter { $0.hasPrefix("| `") }.compactMap { line in
            line.split(separator: "`").dropFirst().first.map(String.init)
        }
        for name in documented {
            #expect(Configuration.keys.contains { $0.name == name }, "docs/configuration.md documents unknown key \(name)")
        }
    }
}
