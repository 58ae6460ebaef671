import JSON
import Registry

/// The part of docs/admin-api.md generated from the method table; a test keeps the file equal to it
/// and `tandem --admin-api` prints it.
public enum AdminAPIDocument {
    public static let beginMarker = "<!-- generated from the method table: begin -->"
    public static let endMarker = "<!-- generated from the method table: end -->"

    public static func methodsSection() -> String {
        var out = beginMarker + "\n\n"
        out += "## Errors\n\n| code | message | when |\n|---|---|---|\n"
        for (code, message, when) in RPCError.codes { out += "| \(code) | \(message) | \(when) |\n" }
        out += "\n## Methods\n\n"
        for method in AdminMethods.all { out += "- [`\(method.name)`](#\(method.name.replacingOccurrences(of: ".", with: "")))\n" }
        for method in AdminMethods.all {
            out += "\n### \(method.name)\n\n\(method.summary)\n\n"
            if method.parameters.isEmpty {
                out += "No parameters.\n\n"
            } else {
                out += "| parameter | type | | meaning |\n|---|---|---|---|\n"
                for parameter in method.parameters {
                    out += "| `\(parameter.name)` | \(parameter.kind.rawValue) | \(parameter.required ? "required" : "optional") | \(parameter.summary) |\n"
                }
                out += "\n"
            }
            out += "Result: \(method.result).\n\n"
            let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": .string(method.name), "params": method.example]
            out += "```\n\(request.description)\n```\n"
            out += "```\n\(commandLine(method))\n```\n"
        }
        return out + "\n" + endMarker
    }

    /// The same example as a `tandemctl` command.
    static func commandLine(_ method: AdminMethod) -> String {
        var words = ["tandemctl", method.name]
        for (key, value) in (method.example.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            switch value {
            case .string(let text):
                let plain = text.allSatisfy { $0.isLetter || $0.isNumber || "+-_.@:/".contains($0) }
                let readsAsJSON = (try? JSONValue.parse(text)) != nil
                words.append(plain && !readsAsJSON ? "\(key)=\(text)" : plain ? "\(key)==\(text)" : "'\(key)=\(text)'")
            default:
                words.append("'\(key):=\(value.description)'")
            }
        }
        return words.joined(separator: " ")
    }
}
