#if canImport(Glibc)
import Glibc
#endif

/// The process's open-files limit against what the configuration asks for. Each TCP connection and
/// admin client is a descriptor, and the soft limit a service starts with is often 1,024 while
/// `sip.tcp_max_connections` defaults to 4,096: past the limit `accept` fails and the connection
/// waits in the backlog, unanswered. Tandem raises the soft limit as far as the hard one allows and,
/// where that is not far enough, refuses connections at a lower count instead (like Kamailio's
/// `open_files_limit`, but derived from the connection limits rather than set on its own).
enum OpenFiles {
    /// Descriptors kept for everything else: UDP sockets, listeners, the SQLite file and its WAL,
    /// epoll, pipes, outgoing TCP and webhook connections.
    static let reserve = 256

    struct Outcome {
        var limit: Int
        /// The TCP connection limit the process can honour (the configured one, or lower).
        var tcpMaxConnections: Int
        var raised: Bool
    }

    static func fit(tcpMaxConnections: Int, adminMaxConnections: Int) -> Outcome {
        let needed = tcpMaxConnections + adminMaxConnections + reserve
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return Outcome(limit: -1, tcpMaxConnections: tcpMaxConnections, raised: false)
        }
        var raised = false
        if limit.rlim_cur < rlim_t(needed) {
            let wanted = min(rlim_t(needed), limit.rlim_max)
            var next = limit
            next.rlim_cur = wanted
            if wanted > limit.rlim_cur, setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &next) == 0 {
                limit = next
                raised = true
            }
        }
        let current = limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
        let fits = current - adminMaxConnections - reserve
        return Outcome(limit: current, tcpMaxConnections: max(1, min(tcpMaxConnections, fits)), raised: raised)
    }
}
