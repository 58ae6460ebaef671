#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// glibc's allocator as the call path needs it. A call allocates and frees a few hundred small blocks
/// on two or more worker threads; with glibc's defaults most of them miss the per-thread cache (7 blocks
/// per size) and take an arena lock, and every free at the top of a worker's heap gives pages back to
/// the kernel only to ask for them again a moment later. Kamailio avoids both with its own pools; Tandem
/// keeps glibc and sizes it: measured on the proxy bench, 446 → 334 CPU-µs per call (docs/PERFORMANCE.md).
enum Allocator {
    /// The per-thread cache size (blocks per size class). Only a tunable sets it, and glibc reads
    /// tunables once at start, so the process starts itself again with it set.
    static let tunables = "glibc.malloc.tcache_count=1000"
    /// Free memory a heap keeps before it is returned to the kernel.
    static let trimThreshold: Int32 = 128 << 20

    /// For the start-up log line: what the allocator runs with.
    static var description: String {
        let tunables = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
        let mode = getenv("TANDEM_ALLOCATOR").map { String(cString: $0) }
        return mode == "system" ? "glibc defaults" : tunables.isEmpty ? "trim threshold" : tunables
    }

    /// Call first thing in `main`. An operator's own `GLIBC_TUNABLES` naming the cache size is kept
    /// as it is; `TANDEM_ALLOCATOR=system` keeps glibc's defaults altogether.
    static func tune() {
        let environment = getenv("TANDEM_ALLOCATOR").map { String(cString: $0) }
        if environment == "system" { return }
        _ = tandem_malloc_trim_threshold(trimThreshold)
        let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
        guard environment != "tuned", !current.contains("glibc.malloc.tcache_count") else { return }
        setenv("GLIBC_TUNABLES", current.isEmpty ? tunables : current + ":" + tunables, 1)
        // Marks the second start, so a glibc that ignores the tunable cannot make this loop.
        setenv("TANDEM_ALLOCATOR", "tuned", 1)
        // The binary's own path, not /proc/self/exe, so the process keeps its name (ps, pgrep, top).
        var path = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if readlink("/proc/self/exe", &path, Int(PATH_MAX)) > 0 {
            execv(path, Swift.CommandLine.unsafeArgv)
        }
        // No /proc or exec failed: run on glibc's defaults rather than not at all.
        unsetenv("TANDEM_ALLOCATOR")
    }
}
