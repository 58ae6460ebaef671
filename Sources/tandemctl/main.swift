#if canImport(Glibc)
import Glibc
#endif
import Admin
import Foundation
import JSON

/// `tandemctl`: the operator's client of the admin socket.
let usage = """
usage: tandemctl [--socket PATH | --tcp HOST:PORT [--token TOKEN]] METHOD [key=value …]
       tandemctl [connection options] --json '{"method": …, "params": {…}}'
       tandemctl [connection options] help [METHOD]
       tandemctl [connection options] import FILE.csv [--skip-existing] [--chunk-size N]

  --socket PATH     admin socket (default: $TANDEM_ADMIN_SOCKET or var/tandem.sock)
  --tcp HOST:PORT   the loopback TCP listener (admin.listen) instead; token from --token or $TANDEM_ADMIN_TOKEN
  --json TEXT       send this request (object or batch) as is; "jsonrpc" and "id" are added when missing

Values: key=value sends value as JSON when it reads as JSON (numbers, true, false, null, [..], {..}, "..."),
else as a string; key:=JSON always parses; key==text is always a string.
Prints the result as indented JSON; on an error prints it to stderr and exits 1 (2 for usage, 3 when
the gateway cannot be reached).
"""

func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("tandemctl: \(message)\n".utf8))
    exit(code)
}

var arguments = Array(CommandLine.arguments.dropFirst())
var socketPath = ProcessInfo.processInfo.environment["TANDEM_ADMIN_SOCKET"] ?? "var/tandem.sock"
var tcp: String?
var token = ProcessInfo.processInfo.environment["TANDEM_ADMIN_TOKEN"]
var rawJSON: String?
var rest: [String] = []
var index = 0
while index < arguments.count {
    let argument = arguments[index]
    func value() -> String {
        index += 1
        guard index < arguments.count else { fail("\(argument) needs a value\n\n\(usage)", code: 2) }
        return arguments[index]
    }
    switch argument {
    case "--socket", "-s": socketPath = value()
    case "--tcp": tcp = value()
    case "--token": token = value()
    case "--json": rawJSON = value()
    case "--help", "-h": print(usage); exit(0)
    default: rest.append(argument)
    }
    index += 1
}

@MainActor func connect() -> AdminClient {
    do throws(AdminServerError) {
        let client: AdminClient
        if let tcp { client = try AdminClient(tcp: tcp) } else { client = try AdminClient(socketPath: socketPath) }
        if tcp != nil {
            guard let token else { fail("--tcp needs --token or $TANDEM_ADMIN_TOKEN", code: 2) }
            let answer = try client.call("system.auth", ["token": .string(token)])
            if let error = answer["error"] { fail("authentication refused: \(error.description)", code: 1) }
        }
        return client
    } catch {
        fail("\(error.reason) (is tandem running? see admin.socket)", code: 3)
    }
}

/// Prints a response: the result on stdout, or the error on stderr with exit 1.
func finish(_ response: JSONValue) -> Never {
    if case .array(let items) = response {
        print(response.pretty)
        exit(items.contains { $0["error"] != nil } ? 1 : 0)
    }
    if let error = response["error"] {
        var message = error["message"]?.stringValue ?? "error"
        if let data = error["data"] {
            if let field = data["field"]?.stringValue { message += ": \(field)" }
            if let reason = data["reason"]?.stringValue { message += ": \(reason)" }
        }
        fail("\(message) (code \(error["code"]?.description ?? "?"))", code: 1)
    }
    print((response["result"] ?? .null).pretty)
    exit(0)
}

func parseValue(_ pair: String) -> (String, JSONValue) {
    if let range = pair.range(of: ":=") , !pair[..<range.lowerBound].contains("=") {
        let text = String(pair[range.upperBound...])
        guard let value = try? JSONValue.parse(text) else { fail("\(pair): the value after := is not JSON", code: 2) }
        return (String(pair[..<range.lowerBound]), value)
    }
    if let range = pair.range(of: "=="), !pair[..<range.lowerBound].contains("=") {
        return (String(pair[..<range.lowerBound]), .string(String(pair[range.upperBound...])))
    }
    guard let equals = pair.firstIndex(of: "=") else { fail("'\(pair)' is not key=value\n\n\(usage)", code: 2) }
    let key = String(pair[..<equals])
    let text = String(pair[pair.index(after: equals)...])
    if let value = try? JSONValue.parse(text), text.first.map({ !$0.isLetter || ["true", "false", "null"].contains(text) }) ?? false {
        return (key, value)
    }
    return (key, .string(text))
}

if let rawJSON {
    guard var request = try? JSONValue.parse(rawJSON) else { fail("--json: not JSON", code: 2) }
    if case .object(var members) = request {
        if members["jsonrpc"] == nil { members["jsonrpc"] = "2.0" }
        if members["id"] == nil { members["id"] = 1 }
        request = .object(members)
    }
    let client = connect()
    do { try client.send(line: request.description) } catch { fail(error.reason, code: 3) }
    guard let line = client.readLine(), let response = try? JSONValue.parse(line) else { fail("no answer", code: 3) }
    finish(response)
}

guard let method = rest.first else { fail("name a method, or help\n\n\(usage)", code: 2) }

switch method {
case "help":
    let client = connect()
    let answer: JSONValue
    do { answer = try client.call("system.methods") } catch { fail(error.reason, code: 3) }
    guard let methods = answer["result"]?.arrayValue else { finish(answer) }
    let wanted = rest.dropFirst().first
    for method in methods {
        let name = method["name"]?.stringValue ?? ""
        if let wanted, wanted != name { continue }
        print("\(name) — \(method["summary"]?.stringValue ?? "")")
        if wanted != nil || rest.count == 1 {
            for parameter in method["params"]?.arrayValue ?? [] {
                let required = parameter["required"]?.boolValue == true ? "required" : "optional"
                print("    \(parameter["name"]?.stringValue ?? "") (\(parameter["type"]?.stringValue ?? ""), \(required)): \(parameter["summary"]?.stringValue ?? "")")
            }
        }
    }
    exit(0)

case "import":
    var file: String?
    var params: [String: JSONValue] = ["progress": true]
    var position = 1
    while position < rest.count {
        switch rest[position] {
        case "--skip-existing": params["skip_existing"] = true
        case "--chunk-size":
            position += 1
            guard position < rest.count, let size = Int(rest[position]) else { fail("--chunk-size needs a number", code: 2) }
            params["chunk_size"] = JSONValue(size)
        default: file = rest[position]
        }
        position += 1
    }
    guard let file else { fail("import needs a CSV file", code: 2) }
    guard FileManager.default.isReadableFile(atPath: file) else { fail("cannot read \(file)", code: 2) }
    // The gateway reads the file itself (it is on this host: the socket is local); send its absolute path.
    let absolute = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
    params["path"] = .string(absolute)
    // Lines in the file less the header: the progress bar's 100%, counted without loading the file.
    var lines = 0
    if let handle = FileHandle(forReadingAtPath: file) {
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { lines += chunk.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } }
        try? handle.close()
    }
    let total = max(1, lines - 1)
    let onTerminal = isatty(STDERR_FILENO) == 1
    let client = connect()
    let answer: JSONValue
    do {
        answer = try client.call("registry.import", .object(params)) { note in
            guard onTerminal, let rows = note["params"]?["rows"]?.integerValue else { return }
            let fraction = min(1, Double(rows) / Double(total))
            let width = 40
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let failed = note["params"]?["failed"]?.integerValue ?? 0
            FileHandle.standardError.write(Data("\r[\(bar)] \(Int(fraction * 100))% \(rows)/\(total) rows, \(failed) failed".utf8))
        }
    } catch {
        fail(error.reason, code: 3)
    }
    if onTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    finish(answer)

default:
    var params: [String: JSONValue] = [:]
    for pair in rest.dropFirst() {
        let (key, value) = parseValue(pair)
        params[key] = value
    }
    let client = connect()
    do { finish(try client.call(method, .object(params))) } catch { fail(error.reason, code: 3) }
}
