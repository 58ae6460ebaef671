#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Registry

/// `tandem-bench calllog CALLS [PER_BATCH]`: the call log's writer alone, on a registry file. Each
/// call is opened and answered in one batch and closed in the next (the proxy benchmark's calls are
/// that short), `PER_BATCH` calls a batch (a 20 ms gather at 2,000 calls/s is 40). Prints the CPU
/// time per call; runs under callgrind to see where the writer's instructions go.
enum CallLogBench {
    static func run(calls: Int, perBatch: Int) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-calllog-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let registry = try Registry(database: try Database(path: directory.appendingPathComponent("tandem.db").path), realm: "tandem", clock: Registry.systemClock)
        let log = CallLog(registry: registry)
        let base = Int64(1_795_000_000_000)
        func call(_ n: Int) -> OpenCall {
            var call = OpenCall(callID: "\(n)-bench@127.0.0.1", fromTag: "f\(n)", cseq: 1, callerNumber: "+3311234\(n % 10_000)",
                                dialled: "service", destination: "+33155\(n % 100_000)", decision: .accept, accountID: "acct-\(n % 5_000)",
                                users: ["user-\(n % 7_000)"], startTime: base + Int64(n))
            call.toTag = "t\(n)"
            call.answeredUserID = call.users.first
            call.answerTime = call.startTime + 40
            return call
        }
        let cpu = cpuSeconds()
        var previous: Range<Int>? = nil
        var start = 0
        while start < calls {
            let batch = start..<min(start + perBatch, calls)
            for n in batch {
                let opened = call(n)
                log.record(.started(opened))
                log.record(.answered(opened))
            }
            if let previous {
                for n in previous {
                    log.record(.closed(call(n).record(endTime: base + Int64(n) + 1_000, sipCode: 200, sipReason: "OK",
                                                      disposition: .answered, hangupBy: .caller, endReason: .bye)))
                }
            }
            log.flush()
            previous = batch
            start = batch.upperBound
        }
        if let previous {
            for n in previous {
                log.record(.closed(call(n).record(endTime: base + Int64(n) + 1_000, sipCode: 200, sipReason: "OK",
                                                  disposition: .answered, hangupBy: .caller, endReason: .bye)))
            }
        }
        log.flush()
        let used = cpuSeconds() - cpu
        let status = log.status
        print("call log: \(calls) calls, \(perBatch) a batch: \(String(format: "%.1f", used / Double(calls) * 1e6)) CPU-µs per call "
              + "(pending \(status.pending), failures \(status.failures))")
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
