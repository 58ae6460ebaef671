import Foundation
import Routing
import Synchronization

/// The dialplans in force, read from `routing.dialplans` (`*.dialplan`). A reload compiles the new
/// files completely before swapping them in, so calls in flight keep the plans they read and a bad
/// file leaves the old plans in force. Reloads run one at a time and at most once a second.
public final class DialplanLibrary: Sendable {
    private let plans: Mutex<DialplanSet>
    /// Held for a whole reload; the time of the last accepted one (milliseconds).
    private let reloading = Mutex<Int64?>(nil)
    public static let minimumInterval: Int64 = 1_000

    public init(_ plans: DialplanSet = DialplanSet()) {
        self.plans = Mutex(plans)
    }

    public var current: DialplanSet { plans.withLock { $0 } }

    /// Every `*.dialplan` file of `directory`, compiled.
    public static func read(directory: String) -> Result<DialplanSet, DialplanProblems> {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".dialplan") }
        } catch {
            return .failure(DialplanProblems(errors: [DialplanError(file: directory, line: 0, reason: "cannot read the folder: \(error.localizedDescription)")]))
        }
        var files: [(name: String, text: String)] = []
        var errors: [DialplanError] = []
        for name in names.sorted() {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                errors.append(DialplanError(file: name, line: 0, reason: "cannot read the file as UTF-8"))
                continue
            }
            files.append((name, text))
        }
        guard errors.isEmpty else { return .failure(DialplanProblems(errors: errors)) }
        return DialplanSet.compile(files)
    }

    /// Re-reads `directory` and swaps the new plans in; on any problem the old plans stay.
    @discardableResult
    public func reload(directory: String, now: Int64) -> Result<DialplanSet, DialplanReloadError> {
        reloading.withLock { last -> Result<DialplanSet, DialplanReloadError> in
            if let last, now - last < Self.minimumInterval, now >= last {
                return .failure(.tooSoon(retryAfter: Self.minimumInterval - (now - last)))
            }
            last = now
            switch Self.read(directory: directory) {
            case .success(let fresh):
                plans.withLock { $0 = fresh }
                return .success(fresh)
            case .failure(let problems):
                return .failure(.invalid(problems))
            }
        }
    }
}
