// libFuzzer entry point for every path a stranger's (or an operator's) bytes reach, built by
// tools/fuzz/run with TANDEM_FUZZ=1 (Package.swift adds this target only then) and
// -sanitize=fuzzer,address,undefined. TANDEM_FUZZ_TARGET picks the target:
//   gateway  the running gateway in-process: an input is a script of datagrams, TCP chunks, timer
//            advances, connection closes and answers to what the gateway sent, from trusted and
//            untrusted peers, with authentication on and off — parse, sanity, authentication, the
//            registrar, routing (households, apps in chains, trunks, a default route), forwarding,
//            responses, CANCEL and call records all run
//   admin    JSON-RPC lines to the admin dispatcher on a scratch registry
//   dialplan a dialplan file, compiled and used to translate numbers
//   config   a configuration file
//   csv      a registry import and a rate deck import
//   trace    a trace file
//   digest   an Authorization header value, verified
import Admin
import Gateway
import GatewayTesting
import JSON
import Registrar
import Registry
import Routing
import SIP
import SIPTransport
#if canImport(Glibc)
import Glibc
#endif

/// One input to the selected target (main.swift hands it to libFuzzer's driver).
func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch FuzzTarget.selected {
    case .gateway: GatewayScript.run(bytes)
    case .admin: AdminInput.run(bytes)
    case .dialplan: DialplanInput.run(bytes)
    case .config: _ = try? Configuration.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.conf")
    case .csv: CSVInput.run(bytes)
    case .trace: _ = try? Trace.parse(String(decoding: bytes, as: UTF8.self), name: "fuzz.trace")
    case .digest: DigestInput.run(bytes)
    }
    return 0
}

enum FuzzTarget: String, CaseIterable {
    case gateway, admin, dialplan, config, csv, trace, digest

    static let selected: FuzzTarget = {
        let name = getenv("TANDEM_FUZZ_TARGET").map { String(cString: $0) } ?? "gateway"
        guard let target = FuzzTarget(rawValue: name) else {
            let message = "TANDEM_FUZZ_TARGET must be one of \(allCases.map(\.rawValue).joined(separator: ", "))\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        return target
    }()
}

/// The gateway under fuzz: two in-memory gateways provisioned alike, one that challenges untrusted
/// callers and one that trusts every loopback source, so both sides of authentication run.
enum GatewayScript {
    static let provisioning = """
        config routing.default_route = sip:127.0.0.1:5090
        peer alice udp 127.0.0.1:5070
        peer bob tcp 127.0.0.1:5071
        peer carrier udp 127.0.0.2:5080
        peer trunk udp 127.0.0.1:5090
        peer vm udp 127.0.0.1:5095
        peer phone udp 127.0.0.1:5072

        admin account.create {"id": "smith", "name": "The Smiths"}
        admin user.create {"account": "smith", "id": "alice", "display_name": "Alice", "role": "primary", "sip_username": "alice", "password": "wonderland"}
        admin user.create {"account": "smith", "id": "bob", "display_name": "Bob", "role": "member", "sip_username": "bob", "password": "builder-99", "acting_user": "alice"}
        admin provider.create {"id": "telco", "name": "Telco", "kind": "carrier", "trusted_sources": ["127.0.0.2"]}
        admin provider.create {"id": "transit", "name": "Transit", "kind": "carrier", "hops": ["sip:127.0.0.1:5090"]}
        admin provider.create {"id": "vmcorp", "name": "VM Corp", "hops": ["sip:127.0.0.1:5095"], "id_scheme": "generated", "domain": "vm.example.net"}
        admin app.create {"id": "screen", "provider": "vmcorp", "name": "Screening", "kind": "screening", "position": 100}
        admin app.create {"id": "voicemail", "provider": "vmcorp", "name": "Voicemail", "kind": "voicemail", "position": 900}
        admin number.create {"number": "+33140000000", "account": "smith", "kind": "household", "provider": "telco"}
        admin number.create {"number": "+33612345678", "account": "smith", "kind": "personal", "owner": "alice", "provider": "telco"}
        admin app.activate {"number": "+33140000000", "app": "screen"}
        admin app.activate {"number": "+33140000000", "app": "voicemail"}
        admin location.add {"user": "alice", "contact": "sip:alice@127.0.0.1:5072", "expires": 3600}
        admin location.add {"user": "bob", "contact": "sip:bob@127.0.0.1:5071;transport=tcp", "expires": 3600}
        """

    static let networks: [InMemoryNetwork] = [false, true].map { (trusting: Bool) -> InMemoryNetwork in
        var text = provisioning
        if trusting { text = "config auth.trusted_sources = 127.0.0.0/8\n" + text }
        do {
            let trace = try Trace.parse(text, name: trusting ? "fuzz-trusting" : "fuzz-challenging")
            let network = try InMemoryNetwork(trace: trace, logger: Logger(label: "fuzz", threshold: .init(.error), sink: Silence()))
            let result = TraceRunner(trace: trace, network: network).run()
            guard result.passed else { fatalError("fuzz provisioning failed: \(result)") }
            return network
        } catch {
            fatalError("fuzz provisioning failed: \(error)")
        }
    }

    static let senders = ["alice", "bob", "carrier", "trunk", "vm", "phone"]

    /// An input is a sequence of steps, each `[op, a, b, …]`:
    ///   op % 8 == 0…3  send the next `a * 256 + b` bytes from a peer (op / 8 % 6 picks it)
    ///   4              advance virtual time by `a` tenths of a second (timers fire)
    ///   5              close the TCP connection
    ///   6              answer the last request the gateway sent to the peer with status 100 + a * 4 % 600
    ///   7              resend the last message the gateway sent to the peer back to it (loops, echoes)
    /// Byte 0 picks the challenging or the trusting gateway.
    static func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let network = networks[Int(first & 1)]
        var index = 1
        var lastSent: [String: [UInt8]] = [:]
        func drain() {
            while let (peer, event) = network.receiveAny(peer: nil, within: 0) {
                if case .message(let bytes) = event { lastSent[peer] = bytes }
            }
        }
        var steps = 0
        while index < input.count, steps < 64 {
            steps += 1
            let op = input[index]
            let a = index + 1 < input.count ? Int(input[index + 1]) : 0
            let b = index + 2 < input.count ? Int(input[index + 2]) : 0
            let peer = senders[Int(op / 8) % senders.count]
            switch op % 8 {
            case 0...3:
                let length = min(a * 256 + b, input.count - min(index + 3, input.count))
                let start = min(index + 3, input.count)
                let payload = Array(input[start..<(start + length)])
                index = start + length
                try? network.send(payload, from: peer, chunkSize: op % 8 == 3 ? max(1, b % 64) : nil)
                drain()
                continue
            case 4:
                network.wait(Double(a) / 10)
            case 5:
                network.close(peer)
            case 6:
                if let request = lastSent[peer], let response = answer(request, status: 100 + (a * 4) % 600) {
                    try? network.send(response, from: peer, chunkSize: nil)
                }
            default:
                if let message = lastSent[peer] { try? network.send(message, from: peer, chunkSize: nil) }
            }
            index += 3
            drain()
        }
        // Let every transaction the script opened end, so state does not pile up across inputs.
        network.wait(40)
        drain()
    }

    /// A response to `request` as a callee would write it: its Via, From, To (with a tag), Call-ID
    /// and CSeq copied line by line, nothing else.
    static func answer(_ request: [UInt8], status: Int) -> [UInt8]? {
        guard let head = SIPFraming.headerSectionLength(request) else { return nil }
        let lines = String(decoding: request[..<head], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: true)
        guard let startLine = lines.first, !startLine.hasPrefix("SIP/2.0") else { return nil }
        var response = "SIP/2.0 \(status) Fuzz\r\n"
        for line in lines.dropFirst() {
            let name = line.prefix { $0 != ":" }.lowercased()
            if ["via", "v", "from", "f", "call-id", "i", "cseq", "record-route"].contains(name) { response += line + "\r\n" }
            if name == "to" || name == "t" { response += line + (line.contains(";tag=") ? "" : ";tag=fuzz") + "\r\n" }
        }
        response += "Contact: <sip:callee@127.0.0.1:5090>\r\nContent-Length: 0\r\n\r\n"
        return Array(response.utf8)
    }
}

/// Log lines go nowhere: millions of inputs each logging a malformed message would be all the fuzzer did.
struct Silence: LogSink {
    func write(_ line: String) {}
}

/// The admin dispatcher on a registry of its own; every line of the input is one request.
enum AdminInput {
    static let dispatcher: AdminDispatcher = {
        let registry = try! Registry(database: try! Database(path: ":memory:"), realm: "fuzz", clock: { 1_795_219_200_000 })
        let location = try! Location(registry: registry, now: 1_795_219_200_000)
        return AdminDispatcher(registry: registry, version: "fuzz", location: location, clock: { 1_795_219_200_000 })
    }()

    static func run(_ input: [UInt8]) {
        for line in input.split(separator: 10, maxSplits: 32) {
            _ = dispatcher.handle(Array(line))
        }
    }
}

enum DialplanInput {
    static func run(_ input: [UInt8]) {
        guard case .success(let plans) = DialplanSet.compile([("fuzz.dialplan", String(decoding: input, as: UTF8.self))]) else { return }
        for plan in plans.plans.values {
            for number in ["112", "0612345678", "+33612345678", "00447700900123", "", "*21*0601#", String(repeating: "9", count: 40)] {
                _ = plan.translate(number)
            }
        }
    }
}

enum CSVInput {
    static let registry: Registry = {
        let registry = try! Registry(database: try! Database(path: ":memory:"), realm: "fuzz", clock: { 1_795_219_200_000 })
        _ = try! registry.write { s throws(RegistryError) in
            var transit = ProviderFields()
            transit.name = "Transit"
            transit.kind = .carrier
            transit.hops = ["sip:192.0.2.9"]
            return try s.createProvider(id: "transit", fields: transit, acting: nil)
        }
        return registry
    }()

    static func run(_ input: [UInt8]) {
        let text = String(decoding: input, as: UTF8.self)
        var reader = CSVReader(text: text)
        var options = ImportOptions()
        options.chunkSize = 7
        options.skipExisting = input.first.map { $0 & 1 == 1 } ?? false
        _ = try? registry.importCSV(&reader, options: options)
        var deck = CSVReader(text: text)
        _ = try? registry.write { s throws(RegistryError) in try s.importTrunkRates(providerID: "transit", &deck, replace: true, acting: nil) }
    }
}

enum DigestInput {
    static func run(_ input: [UInt8]) {
        guard let credentials = DigestCredentials(parsing: String(decoding: input, as: UTF8.self)) else { return }
        _ = DigestVerifier.algorithm(of: credentials)
        _ = DigestVerifier.verify(credentials, method: "REGISTER", ha1: String(repeating: "ab", count: 16))
        _ = DigestVerifier.verify(credentials, method: "INVITE", ha1: String(repeating: "cd", count: 32))
        _ = credentials.uri.flatMap { SIPURI(parsing: $0) }.map { $0.isEquivalent(to: SIPURI(parsing: "sip:tandem.test")!) }
    }
}
