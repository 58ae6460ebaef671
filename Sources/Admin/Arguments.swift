import JSON
import Registry

/// A parameter a method takes: its documentation and the check every call's value gets.
public struct Parameter: Sendable {
    public enum Kind: String, Sendable {
        case string, integer, boolean
        case strings = "array of strings"
        case objects = "array of objects"
        case object
    }
    public var name: String
    public var kind: Kind
    public var required: Bool
    public var summary: String

    public static func required(_ name: String, _ kind: Kind, _ summary: String) -> Parameter {
        Parameter(name: name, kind: kind, required: true, summary: summary)
    }
    public static func optional(_ name: String, _ kind: Kind, _ summary: String) -> Parameter {
        Parameter(name: name, kind: kind, required: false, summary: summary)
    }
}

/// The `params` of one call, checked against the method's declared parameters before the method
/// runs: unknown names, missing required ones and wrong types are refused with the field named.
/// Because methods read only declared parameters, the documentation cannot drift from the code.
public struct Arguments: Sendable {
    let values: [String: JSONValue]
    let declared: [String: Parameter]

    init(_ params: JSONValue?, declared parameters: [Parameter]) throws(RPCError) {
        declared = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0) })
        switch params {
        case nil, .null?: values = [:]
        case .object(let members)?: values = members
        case .array?: throw RPCError.invalidParams("params", "Tandem's methods take named parameters (an object)")
        case let other?: throw RPCError.invalidParams("params", "must be an object, not \(other.typeName)")
        }
        for name in values.keys.sorted() where declared[name] == nil {
            let known = parameters.map(\.name)
            throw RPCError.invalidParams(name, known.isEmpty ? "unknown parameter; this method takes none"
                                                             : "unknown parameter; known: \(known.joined(separator: ", "))")
        }
        for parameter in parameters {
            guard let value = values[parameter.name], value != .null else {
                if parameter.required { throw RPCError.invalidParams(parameter.name, "required") }
                continue
            }
            let fits: Bool = switch (parameter.kind, value) {
            case (.string, .string), (.integer, .integer), (.boolean, .bool): true
            case (.strings, .array(let items)): items.allSatisfy { $0.stringValue != nil }
            case (.objects, .array(let items)): items.allSatisfy { $0.objectValue != nil }
            case (.object, .object): true
            default: false
            }
            guard fits else { throw RPCError.invalidParams(parameter.name, "must be \(article(parameter.kind)), not \(value.typeName)") }
        }
    }

    private func check(_ name: String) {
        precondition(declared[name] != nil, "parameter \(name) is read but not declared")
    }

    public func string(_ name: String) -> String? {
        check(name)
        return values[name]?.stringValue
    }

    /// A required parameter: presence was checked on arrival.
    public func text(_ name: String) -> String { string(name) ?? "" }

    public func integer(_ name: String) throws(RPCError) -> Int? {
        check(name)
        guard let value = values[name]?.integerValue else { return nil }
        guard let integer = Int(exactly: value) else { throw RPCError.invalidParams(name, "out of range") }
        return integer
    }

    public func bool(_ name: String) -> Bool? {
        check(name)
        return values[name]?.boolValue
    }

    public func strings(_ name: String) -> [String]? {
        check(name)
        return values[name]?.arrayValue?.compactMap(\.stringValue)
    }

    public func object(_ name: String) -> JSONValue? {
        check(name)
        guard let value = values[name], value != .null else { return nil }
        return value
    }

    /// Whether the call named the parameter, even as null (`mode: null` clears an override).
    public func isPresent(_ name: String) -> Bool {
        check(name)
        return values[name] != nil
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ name: String, as type: T.Type) throws(RPCError) -> T? where T.RawValue == String {
        guard let text = string(name) else { return nil }
        do { return try parseChoice(name, text, as: type) } catch { throw RPCError(error) }
    }
}

private func article(_ kind: Parameter.Kind) -> String {
    switch kind {
    case .string: "a string"
    case .integer: "an integer"
    case .boolean: "true or false"
    case .strings: "an array of strings"
    case .objects: "an array of objects"
    case .object: "an object"
    }
}
