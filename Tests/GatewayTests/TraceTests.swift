import Foundation
import Gateway
import GatewayTesting
import Testing

/// Every `Tests/Traces/*.trace` runs through the real gateway code over the in-memory network.
@Suite struct TraceTests {
    static var traceFiles: [String] {
        guard let folder = Bundle.module.resourceURL?.appendingPathComponent("Traces"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        return names.filter { $0.hasSuffix(".trace") }.sorted().map { folder.appendingPathComponent($0).path }
    }

    @Test func tracesExist() {
        #expect(Self.traceFiles.count >= 10)
    }

    @Test(arguments: traceFiles)
    func trace(_ path: String) throws {
        let trace = try Trace.load(path: path)
        let logger = Logger(label: "trace", threshold: .init(.error))
        let network = try InMemoryNetwork(trace: trace, logger: logger)
        let result = TraceRunner(trace: trace, network: network).run()
        #expect(result.passed, "\(result)")
    }
}
