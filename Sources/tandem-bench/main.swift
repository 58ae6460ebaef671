#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SIP

/// `tandem-bench proxy CALLS`: whole calls through the proxy core in-process (ProxyBench.swift).
/// `tandem-bench cycle N [FILE]`: N parse + proxy edits + serialize cycles of one message through the
/// SIP layer — the same work as tools/bench/sip/osip_cycle.c — printed as msgs/s. Also the workload of
/// the valgrind leak check (tools/leak-check).
/// `tandem-bench registry N` and `tandem-bench admin SOCKET CALLS`: RegistryBench.swift.
/// `tandem-bench routing HOUSEHOLDS [DECISIONS]`: `Router.decide` at scale (RoutingBench.swift).
/// `tandem-bench calllog CALLS [PER_BATCH]`: the call log's writer alone (CallLogBench.swift).
/// `tandem-bench presence USERS [WATCHED] [CHANGES]`: the presence server in-process (PresenceBench.swift).
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "registry", arguments.count >= 2, let households = Int(arguments[1]), households > 0 {
    do { try RegistryBench.run(households: households) } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if arguments.first == "admin", arguments.count >= 3, let calls = Int(arguments[2]), calls > 0 {
    do { try AdminSocketBench.run(socket: arguments[1], calls: calls) } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if arguments.first == "routing", arguments.count >= 2, let households = Int(arguments[1]), households > 0 {
    do {
        try RoutingBench.run(households: households, decisions: arguments.count >= 3 ? Int(arguments[2]) ?? 1_000_000 : 1_000_000)
    } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if arguments.first == "proxy-udp", arguments.count >= 2, let calls = Int(arguments[1]), calls > 0 {
    ProxySocketBench.run(calls: calls, workers: arguments.count >= 3 ? Int(arguments[2]) ?? 2 : 2)
    exit(0)
}
if arguments.first == "calllog", arguments.count >= 2, let calls = Int(arguments[1]), calls > 0 {
    do { try CallLogBench.run(calls: calls, perBatch: arguments.count >= 3 ? Int(arguments[2]) ?? 40 : 40) } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if arguments.first == "presence", arguments.count >= 2, let users = Int(arguments[1]), users > 1 {
    let watched = arguments.count >= 3 ? Int(arguments[2]) ?? 20 : 20
    do { try PresenceBench.run(users: users, watched: min(watched, users - 1), changes: arguments.count >= 4 ? Int(arguments[3]) ?? 3000 : 3000) } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if arguments.first == "proxy", arguments.count >= 2, let calls = Int(arguments[1]), calls > 0 {
    ProxyBench.run(calls: calls)
    exit(0)
}
guard arguments.first == "cycle", arguments.count >= 2, let iterations = Int(arguments[1]), iterations > 0 else {
    FileHandle.standardError.write(Data("usage: tandem-bench cycle N [FILE] | tandem-bench proxy CALLS\n".utf8))
    exit(2)
}
let bytes: [UInt8]
if arguments.count >= 3 {
    guard let data = FileManager.default.contents(atPath: arguments[2]) else {
        FileHandle.standardError.write(Data("tandem-bench: cannot read \(arguments[2])\n".utf8))
        exit(2)
    }
    bytes = Array(data)
} else {
    bytes = Array((
        "INVITE sip:+15551230002@biloxi.example.com;user=phone SIP/2.0\r\n"
        + "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9a1c2d;rport\r\nMax-Forwards: 70\r\n"
        + "From: <sip:+15551230001@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:+15551230002@biloxi.example.com>\r\n"
        + "Call-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\n"
        + "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\r\n").utf8)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var total = 0
let start = now()
for _ in 0..<iterations {
    do {
        let message = try SIPMessage.parse(bytes)
        message.decrementMaxForwards()
        try message.pushVia("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKtandem0a1b2c3d")
        try message.pushRecordRoute("<sip:198.51.100.1:5060;lr>")
        total += try message.serialized().count
    } catch {
        FileHandle.standardError.write(Data("tandem-bench: \(error)\n".utf8))
        exit(1)
    }
}
let seconds = now() - start
print(String(format: "swift %d cycles %.3f s %.0f msgs/s %d bytes out", iterations, seconds, Double(iterations) / seconds, total / iterations))
