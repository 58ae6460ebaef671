#if canImport(Glibc)
import Glibc
#endif

/// RFC 4180 records read as a stream: quoted fields may hold commas, doubled quotes and line breaks;
/// CRLF or LF ends a record. Never holds more than one buffer and one record.
public struct CSVReader: ~Copyable {
    private let refill: () -> [UInt8]?
    private var buffer: [UInt8] = []
    private var position = 0
    private var finished = false
    private let closeFile: (() -> Void)?
    /// Line where the record last returned starts (1-based).
    public private(set) var recordLine = 0
    private var line = 1

    /// Reads `text` from memory.
    public init(text: String) {
        var pending: [UInt8]? = Array(text.utf8)
        refill = { defer { pending = nil }; return pending }
        closeFile = nil
    }

    /// Reads the file at `path`, 64 KiB at a time.
    public init(path: String) throws(RegistryError) {
        guard let file = fopen(path, "rb") else {
            throw .invalid("path", "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        refill = {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, 65_536, file) }
            return count == 0 ? nil : Array(chunk.prefix(count))
        }
        closeFile = { fclose(file) }
    }

    deinit { closeFile?() }

    private mutating func nextByte() -> UInt8? {
        if position == buffer.count {
            guard !finished, let more = refill(), !more.isEmpty else { finished = true; return nil }
            buffer = more
            position = 0
        }
        defer { position += 1 }
        return buffer[position]
    }

    private mutating func peekByte() -> UInt8? {
        if position == buffer.count {
            guard !finished, let more = refill(), !more.isEmpty else { finished = true; return nil }
            buffer = more
            position = 0
        }
        return buffer[position]
    }

    /// The next record, or nil at the end. An unterminated quote is an error naming its line.
    public mutating func next() throws(RegistryError) -> [String]? {
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var sawAnything = false
        recordLine = line
        while let byte = nextByte() {
            sawAnything = true
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if peekByte() == UInt8(ascii: "\"") { _ = nextByte(); field.append(byte) } else { quoted = false }
                } else {
                    if byte == 10 { line += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\"") where field.isEmpty: quoted = true
            case UInt8(ascii: ","):
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
            case 13 where peekByte() == 10: continue
            case 10:
                line += 1
                fields.append(String(decoding: field, as: UTF8.self))
                // Blank lines are skipped rather than read as a record of one empty field.
                if fields.count == 1, fields[0].isEmpty { fields.removeAll(); recordLine = line; continue }
                return fields
            default: field.append(byte)
            }
        }
        if quoted { throw .invalid("csv", "line \(recordLine): a quoted field is not closed") }
        guard sawAnything else { return nil }
        fields.append(String(decoding: field, as: UTF8.self))
        if fields.count == 1, fields[0].isEmpty { return nil }
        return fields
    }
}

extension CSVReader {
    /// The error for a first-line column no import knows. The name is echoed only when it could be
    /// one: the first line of a file that is not an import (`path=/etc/passwd`) must not come back
    /// to the admin client in the error.
    static func unknownColumn(_ name: String, _ index: Int, known: [String]) -> RegistryError {
        let plausible = name.count <= 32 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        return .invalid("csv", "line 1: unknown column \(plausible ? "'\(name)' " : "")(column \(index + 1)); known: \(known.joined(separator: ", "))")
    }
}
