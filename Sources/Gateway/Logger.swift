#if canImport(Glibc)
import Glibc
#endif
import Registry
import Synchronization

/// Log severities, as `log.level` names them.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, notice, warning, error

    public init?(name: String) {
        guard let level = Self.allCases.first(where: { "\($0)" == name.lowercased() }) else { return nil }
        self = level
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Where log lines go; tests collect them, the server writes them to stderr.
public protocol LogSink: Sendable {
    func write(_ line: String)
}

/// Writes whole lines to standard error with one `write(2)` each, so lines from several threads never
/// interleave (C's `stderr` global is not concurrency-safe in Swift 6).
public struct StandardErrorSink: LogSink {
    public init() {}
    public func write(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}

/// A structured, leveled logger: one line per event, `key=value` metadata. Libraries receive a logger
/// and never build one (STYLE.md §8); the level is shared so SIGHUP can change it in place.
public struct Logger: Sendable {
    public final class Threshold: Sendable {
        let raw: Atomic<Int>
        public init(_ level: LogLevel) { raw = Atomic(level.rawValue) }
        public var level: LogLevel {
            get { LogLevel(rawValue: raw.load(ordering: .relaxed)) ?? .info }
        }
        public func set(_ level: LogLevel) { raw.store(level.rawValue, ordering: .relaxed) }
    }

    public let label: String
    public let threshold: Threshold
    let sink: any LogSink

    public init(label: String, threshold: Threshold = Threshold(.info), sink: any LogSink = StandardErrorSink()) {
        self.label = label
        self.threshold = threshold
        self.sink = sink
    }

    /// The same sink and level under another label.
    public func labeled(_ label: String) -> Logger {
        Logger(label: label, threshold: threshold, sink: sink)
    }

    public func isEnabled(_ level: LogLevel) -> Bool { level >= threshold.level }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) {
        guard isEnabled(level) else { return }
        var line = Self.timestamp()
        line += " \(level) [\(label)] "
        line += message()
        for (key, value) in metadata() {
            line += " \(key)="
            line += value.contains(" ") || value.isEmpty ? "\"\(value)\"" : value
        }
        sink.write(line)
    }

    public func debug(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) { log(.debug, message(), metadata()) }
    public func info(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) { log(.info, message(), metadata()) }
    public func notice(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) { log(.notice, message(), metadata()) }
    public func warning(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) { log(.warning, message(), metadata()) }
    public func error(_ message: @autoclosure () -> String, _ metadata: @autoclosure () -> [(String, String)] = []) { log(.error, message(), metadata()) }

    /// RFC 3339 UTC with milliseconds, the only time format on the wire and in logs (STYLE.md).
    static func timestamp() -> String {
        Timestamp.rfc3339(milliseconds: Registry.systemClock())
    }
}
