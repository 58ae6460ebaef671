"""The REGISTER benchmark: sipp registers users with digest authentication — REGISTER, 401, REGISTER
with credentials, 200 — against Tandem and (when installed) Kamailio, one after the other in the same
run. Each step runs RATE x SECONDS registrations at RATE registrations/s over USERS users (after the
first pass, re-registrations of known contacts); a step passes only with zero failures. Reports the
highest passing rate and the registrar's CPU-microseconds per registration (two REGISTERs), from
/proc, as the proxy benchmark does."""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))
from bench import free_port, group_pids, cpu_seconds, pss_kb, sipp_outcome, stop  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def provision(work, users, tandem, tandemctl):
    """A registry file with USERS users, made once through the admin socket and copied per step."""
    with open(f"{work}/registry.csv", "w") as f:
        f.write("record,account_id,name,user_id,display_name,sip_username,password\n")
        f.write("account,bench,Bench,,,,\n")
        for i in range(users):
            f.write(f"user,bench,,u{i:05d},User {i},user{i:05d},secret-{i:05d}\n")
    with open(f"{work}/users.csv", "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(users):
            f.write(f"user{i:05d};[authentication username=user{i:05d} password=secret-{i:05d}];127.0.0.1:{20000 + i % 40000}\n")
    port = free_port()
    process = subprocess.Popen([tandem, "--config", os.path.join(ROOT, "Config/tandem.conf"), "--set", f"sip.listen=udp:127.0.0.1:{port}",
                                "--set", f"storage.path={work}/seed.db", "--set", f"admin.socket={work}/seed.sock",
                                "--set", "log.level=warning"], stderr=open(f"{work}/tandem.log", "a"), start_new_session=True)
    for _ in range(100):
        if os.path.exists(f"{work}/seed.sock"):
            break
        time.sleep(0.1)
    subprocess.run([tandemctl, "--socket", f"{work}/seed.sock", "import", f"{work}/registry.csv"], check=True,
                   stdout=subprocess.DEVNULL)
    stop(process)


def start(name, port, work, tandem, extra=()):
    if name == "tandem":
        for suffix in ["", "-wal", "-shm"]:
            if os.path.exists(f"{work}/step.db{suffix}"):
                os.remove(f"{work}/step.db{suffix}")
        for suffix in ["", "-wal"]:  # the seed's last writes may still be in its WAL
            if os.path.exists(f"{work}/seed.db{suffix}"):
                shutil.copy(f"{work}/seed.db{suffix}", f"{work}/step.db{suffix}")
        cmd = [tandem, "--config", os.path.join(ROOT, "Config/tandem.conf"), "--set", f"sip.listen=udp:127.0.0.1:{port}",
               "--set", "auth.algorithms=MD5", "--set", "security.flood_limit=0",  # one sipp source sends thousands a second
               "--set", f"storage.path={work}/step.db", "--set", f"admin.socket={work}/tandem.sock",
               "--set", "log.level=warning"] + [arg for setting in extra for arg in ("--set", setting)]
        # TANDEM_BENCH_WRAP runs the registrar under a profiler: `perf record -g -o /tmp/p.data --`.
        cmd = os.environ.get("TANDEM_BENCH_WRAP", "").split() + cmd
        process = subprocess.Popen(cmd, stderr=open(f"{work}/tandem.log", "a"), start_new_session=True)
    else:
        config = open(os.path.join(HERE, "kamailio.cfg")).read().replace("PROXY_PORT", str(port))
        open(f"{work}/kamailio.cfg", "w").write(config)
        cmd = ["kamailio", "-f", f"{work}/kamailio.cfg", "-DD", "-E", "-m", "1024", "-M", "16", "-x", "tlsf", "-X", "tlsf",
               "-P", f"{work}/kamailio.pid", "-Y", work]
        process = subprocess.Popen(cmd, stderr=open(f"{work}/kamailio.log", "a"), start_new_session=True)
    time.sleep(1.5)
    if process.poll() is not None:
        sys.exit(f"{name} did not start; see {work}/{name}.log")
    return process


def step(name, rate, seconds, users, work, tandem, extra=()):
    port, client = free_port(), free_port()
    count = rate * seconds
    registrar = start(name, port, work, tandem, extra)
    pids = group_pids(registrar.pid)
    before = cpu_seconds(pids)
    stat = f"{work}/reg-{name}-{rate}.csv"
    sipp = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/register.xml"), f"127.0.0.1:{port}", "-i", "127.0.0.1",
                             "-p", str(client), "-inf", f"{work}/users.csv", "-m", str(count), "-r", str(rate), "-l", str(rate * 4),
                             "-nostdin", "-timeout", f"{seconds + 30}s", "-timeout_error", "-buff_size", "4194304",
                             "-trace_stat", "-stf", stat, "-fd", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak = 0
    while sipp.poll() is None:
        peak = max(peak, pss_kb(group_pids(registrar.pid)))
        time.sleep(0.5)
    after = cpu_seconds(group_pids(registrar.pid))
    stop(registrar)
    ok, failed = sipp_outcome(stat, count)
    return ok, failed, (after - before) / ok * 1e6 if ok else float("nan"), peak / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="500,1000,2000,3000,4000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--tandem", required=True)
    parser.add_argument("--tandemctl", required=True)
    parser.add_argument("--only", choices=["tandem", "kamailio"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Tandem setting for every step")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tandem-register-bench-")
    registrars = ["tandem", "kamailio"] if shutil.which("kamailio") else ["tandem"]
    if args.only:
        registrars = [args.only]
    provision(work, args.users, args.tandem, args.tandemctl)
    print(f"REGISTER with digest (401 then 200), {args.users} users, {args.seconds} s per step; CPU-µs per registration")
    summary = {}
    for name in registrars:
        best = None
        for rate in [int(r) for r in args.rates.split(",")]:
            ok, failed, cpu, peak = step(name, rate, args.seconds, args.users, work, args.tandem, args.set)
            print(f"{name:9} {rate:6}/s  ok {ok:7}  failed {failed:5}  cpu/registration {cpu:7.1f} µs  peak {peak:6.1f} MB", flush=True)
            if failed:
                break
            best = (rate, cpu, peak)
        summary[name] = best
    for name, best in summary.items():
        if best:
            print(f"{name}: max {best[0]}/s with zero failures; {best[1]:.1f} CPU-µs per registration at that rate; peak {best[2]:.1f} MB")
        else:
            print(f"{name}: no step passed")
    if summary.get("tandem") and summary.get("kamailio"):
        t, k = summary["tandem"], summary["kamailio"]
        print(f"ratio tandem/kamailio: CPU per registration {t[1] / k[1]:.2f}x at their max rates")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
