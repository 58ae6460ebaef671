#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatewayTesting
import SIPTransport

/// `tandem-replay TRACE… --target udp:HOST:PORT [--target tcp:HOST:PORT] [--timeout SECONDS] [--admin SOCKET]`
/// plays trace files over real sockets against a running `tandem` (format: docs/traces.md).
let usage = """
usage: tandem-replay TRACE… --target udp:HOST:PORT [--target tcp:HOST:PORT …] [--timeout SECONDS] [--include-timing]
                     [--admin SOCKET]
       tandem-replay TRACE --dialplans-to FOLDER

Plays each trace against a running tandem over real UDP/TCP sockets and prints PASS or FAIL with
the exchange as a ladder. Each peer talks to the target of its transport and address family;
with one --target, the other transport uses the same host and port. Traces with `admin` steps
provision through --admin SOCKET (a tandem with an empty registry each); without it they are skipped.
A trace with `dialplan` blocks needs them in the tandem's routing.dialplans folder: --dialplans-to
writes them there as NAME.dialplan and exits.
"""

func fail(_ text: String) -> Never {
    FileHandle.standardError.write(Data("tandem-replay: \(text)\n".utf8))
    exit(2)
}

var files: [String] = []
var targets: [ListenPoint] = []
var timeout = 2.0
var includeVirtualTiming = false
var adminSocket: String?
var dialplanFolder: String?
var arguments = Array(CommandLine.arguments.dropFirst())
while !arguments.isEmpty {
    let argument = arguments.removeFirst()
    switch argument {
    case "--target", "-t":
        guard !arguments.isEmpty else { fail("--target needs udp:HOST:PORT or tcp:HOST:PORT") }
        do {
            targets.append(try ListenPoint(parsing: arguments.removeFirst()))
        } catch { fail("\(error)") }
    case "--timeout":
        guard let value = arguments.first.flatMap(Double.init), value > 0 else { fail("--timeout needs seconds") }
        arguments.removeFirst()
        timeout = value
    case "--include-timing":
        includeVirtualTiming = true
    case "--admin":
        guard !arguments.isEmpty else { fail("--admin needs the admin socket path") }
        adminSocket = arguments.removeFirst()
    case "--dialplans-to":
        guard !arguments.isEmpty else { fail("--dialplans-to needs a folder") }
        dialplanFolder = arguments.removeFirst()
    case "--help", "-h":
        print(usage)
        exit(0)
    default:
        if argument.hasPrefix("-") { fail("unknown option \(argument)\n\(usage)") }
        files.append(argument)
    }
}
guard !files.isEmpty else { fail("no trace given\n\(usage)") }
if let folder = dialplanFolder {
    do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in files {
            for plan in try Trace.load(path: file).dialplans {
                try Data(plan.text.utf8).write(to: URL(fileURLWithPath: folder).appendingPathComponent("\(plan.name).dialplan"))
            }
        }
    } catch { fail("\(error)") }
    exit(0)
}
guard !targets.isEmpty else { fail("--target is required\n\(usage)") }

var passed = 0, failed = 0, skipped = 0
for file in files {
    do {
        let trace = try Trace.load(path: file)
        if trace.needsVirtualTime && !includeVirtualTiming {
            print("SKIP \(file) (exact timer checks need virtual time; --include-timing plays it in real time)")
            skipped += 1
            continue
        }
        if !trace.configuration.isEmpty {
            print("note: \(file) expects tandem to run with: " + trace.configuration.map { "--set '\($0.replacingOccurrences(of: " ", with: ""))'" }.joined(separator: " "))
        }
        if !trace.dialplans.isEmpty {
            print("note: \(file) expects tandem's routing.dialplans to hold its dialplans (tandem-replay \(file) --dialplans-to FOLDER)")
        }
        if trace.usesAdmin && adminSocket == nil {
            print("SKIP \(file) (it provisions through the admin socket; pass --admin SOCKET of a tandem with an empty registry)")
            skipped += 1
            continue
        }
        let network = try SocketNetwork(trace: trace, targets: targets, adminSocket: adminSocket)
        let result = TraceRunner(trace: trace, network: network, timeout: timeout).run()
        print(result)
        if result.passed { passed += 1 } else { failed += 1 }
    } catch {
        print("FAIL \(file)\n  \(error)")
        failed += 1
    }
}
print("\(passed) passed, \(failed) failed, \(skipped) skipped")
exit(failed == 0 ? 0 : 1)
