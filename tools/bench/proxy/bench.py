"""The proxy benchmark: sipp UAC -> proxy -> sipp UAS on loopback, for Tandem and (when installed)
Kamailio, one after the other in the same run. Each step runs RATE x 10 s calls at RATE calls/s; a
step passes only with zero failed calls. Reports the highest passing rate, proxy CPU-microseconds per
call (utime+stime of every proxy process, from /proc), and peak memory (sum of Pss)."""
import argparse, csv, glob, os, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def group_pids(pid):
    """The process and all its descendants (Kamailio forks its workers)."""
    pids, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for path in glob.glob(f"/proc/{parent}/task/*/children"):
            try:
                for child in open(path).read().split():
                    if int(child) not in pids:
                        pids.add(int(child))
                        frontier.append(int(child))
            except OSError:
                pass
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / TICK


def thread_cpu(pids):
    """(user, system) CPU seconds by thread name: where a proxy's time goes, in its code or the kernel's."""
    by_name = {}
    for pid in pids:
        for path in glob.glob(f"/proc/{pid}/task/*/stat"):
            try:
                text = open(path).read()
                name = text[text.index("(") + 1:text.rindex(")")]
                fields = text.rsplit(")", 1)[1].split()
                # Numbered threads (udp-5060-0, libdispatch workers) are summed under one name.
                key = name.rstrip("0123456789").rstrip("-") or name
                user, system = by_name.get(key, (0, 0))
                by_name[key] = (user + int(fields[11]) / TICK, system + int(fields[12]) / TICK)
            except (OSError, ValueError, IndexError):
                pass
    return by_name


def pss_kb(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def start_proxy(name, proxy_port, uas_port, work, tandem_bin):
    if name == "tandem":
        cmd = [tandem_bin, "--config", os.path.join(ROOT, "Config/tandem.conf"),
               "--set", f"sip.listen=udp:127.0.0.1:{proxy_port}",
               "--set", f"routing.default_route=sip:127.0.0.1:{uas_port}", "--set", "auth.trusted_sources=127.0.0.1",
               "--set", f"storage.path={work}/tandem.db", "--set", f"admin.socket={work}/tandem.sock", "--set", "log.level=warning"]
        process = subprocess.Popen(cmd, stderr=open(f"{work}/tandem.log", "a"), start_new_session=True)
    else:
        config = open(os.path.join(HERE, "kamailio.cfg")).read()
        config = config.replace("PROXY_PORT", str(proxy_port)).replace("UAS_PORT", str(uas_port))
        path = f"{work}/kamailio.cfg"
        open(path, "w").write(config)
        cmd = ["kamailio", "-f", path, "-DD", "-E", "-m", "1024", "-M", "16", "-x", "tlsf", "-X", "tlsf",
               "-P", f"{work}/kamailio.pid", "-Y", work]
        process = subprocess.Popen(cmd, stderr=open(f"{work}/kamailio.log", "a"), start_new_session=True)
    time.sleep(1.0)
    if process.poll() is not None:
        sys.exit(f"{name} did not start; see {work}/{name}.log")
    return process


def sipp_outcome(stat, expected):
    """(successful, failed) from a sipp statistics file; calls sipp never finished count as failed."""
    ok = failed = 0
    try:
        rows = list(csv.reader(open(stat), delimiter=";"))
        header, last = rows[0], rows[-1]
        ok = int(last[header.index("SuccessfulCall(C)")])
        failed = int(last[header.index("FailedCall(C)")])
    except (OSError, ValueError, IndexError):
        failed = expected
    failed += expected - ok - failed if ok + failed < expected else 0
    return ok, failed


def stop(process):
    if process and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def step(name, rate, seconds, work, tandem_bin):
    proxy_port, uas_port, uac_port = free_port(), free_port(), free_port()
    calls = rate * seconds
    proxy = start_proxy(name, proxy_port, uas_port, work, tandem_bin)
    limit = seconds + 30
    uas = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/uas.xml"), "-i", "127.0.0.1",
                            "-p", str(uas_port), "-nostdin", "-timeout", f"{limit}s", "-buff_size", "4194304"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)
    pids = group_pids(proxy.pid)
    before = cpu_seconds(pids)
    threads_before = thread_cpu(pids)
    stat = f"{work}/uac-{name}-{rate}.csv"
    uac = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/uac.xml"), f"127.0.0.1:{proxy_port}",
                            "-i", "127.0.0.1", "-p", str(uac_port), "-s", "bench", "-m", str(calls), "-r", str(rate),
                            "-l", str(rate * 4), "-nostdin", "-timeout", f"{limit}s", "-timeout_error",
                            "-buff_size", "4194304", "-trace_stat", "-stf", stat, "-fd", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak = 0
    while uac.poll() is None:
        peak = max(peak, pss_kb(group_pids(proxy.pid)))
        time.sleep(0.5)
    after = cpu_seconds(group_pids(proxy.pid))
    threads_after = thread_cpu(group_pids(proxy.pid))
    peak = max(peak, pss_kb(group_pids(proxy.pid)))
    stop(uas)
    stop(proxy)
    ok, failed = sipp_outcome(stat, calls)
    cpu_us = (after - before) / ok * 1e6 if ok else float("nan")
    if name == "tandem" and ok:
        spent = {}
        for k, (user, system) in threads_after.items():
            user0, system0 = threads_before.get(k, (0, 0))
            spent[k] = ((user - user0) / ok * 1e6, (system - system0) / ok * 1e6)
        print(f"  tandem threads, CPU-us/call @ {rate}/s (user+system): "
              + ", ".join(f"{k} {u + s:.0f} ({u:.0f}+{s:.0f})"
                          for k, (u, s) in sorted(spent.items(), key=lambda kv: -sum(kv[1])) if u + s >= 1), flush=True)
    return ok, failed, cpu_us, peak / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="500,1000,2000,3000,4000,5000,6000,8000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--tandem", required=True)
    parser.add_argument("--only", choices=["tandem", "kamailio"])
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    proxies = ["tandem", "kamailio"]
    if shutil.which("kamailio") is None:
        print("note: kamailio is not installed; measuring Tandem alone")
        proxies = ["tandem"]
    if args.only:
        proxies = [args.only]
    work = tempfile.mkdtemp(prefix="tandem-bench-")
    results = {}
    for name in proxies:
        results[name] = []
        for rate in rates:
            ok, failed, cpu_us, peak_mb = step(name, rate, args.seconds, work, args.tandem)
            results[name].append((rate, ok, failed, cpu_us, peak_mb))
            print(f"{name:9} {rate:6d} calls/s: {ok:7d} ok {failed:5d} failed  {cpu_us:7.1f} CPU-us/call  peak {peak_mb:6.1f} MB",
                  flush=True)
            if failed:
                break
    print()
    print("| proxy | max rate with 0 failures | CPU-µs per call at each passing rate | peak memory (Pss) |")
    print("|---|---|---|---|")
    summary = {}
    for name, rows in results.items():
        passing = [r for r in rows if r[2] == 0]
        best = max((r[0] for r in passing), default=0)
        cpu = ", ".join(f"{r[3]:.0f} @ {r[0]}/s" for r in passing)
        peak = max((r[4] for r in rows), default=0)
        summary[name] = (best, {r[0]: r[3] for r in passing}, peak)
        print(f"| {name} | {best} calls/s | {cpu} | {peak:.0f} MB |")
    if "kamailio" in summary and "tandem" in summary:
        t, k = summary["tandem"], summary["kamailio"]
        common = sorted(set(t[1]) & set(k[1]))
        print()
        print(f"Tandem/Kamailio max rate: {t[0] / k[0]:.2f}" if k[0] else "")
        for rate in common:
            print(f"Tandem/Kamailio CPU per call at {rate}/s: {t[1][rate] / k[1][rate]:.2f}")
        print(f"Tandem/Kamailio peak memory: {t[2] / k[2]:.2f}" if k[2] else "")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
