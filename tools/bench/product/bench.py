"""The product benchmark: what a real deployment looks like. HOUSEHOLDS households are provisioned
(an account on a plan; a primary and a member user; a household number and the primary's personal
number), every user has a binding (`location.add`) — primaries' devices on one sipp UAS that answers,
members' on one that is busy (486) — and a trusted carrier (sipp, from 127.0.0.1) dials the household
and personal numbers from an injection file. Each call takes the registry lookup, availability,
forking (a household number rings both users: one answers, one is busy), the call record, the
account's gauge and the events. Kamailio runs its proxy path (tools/bench/proxy) in the same run, the
reference the product path is compared with. Reports CPU-µs per call (utime+stime of every proxy
process, from /proc), peak memory, and checks one call record per call."""
import argparse, json, os, random, shutil, socket, sqlite3, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
import bench as proxy_bench  # noqa: E402
from bench import free_port, group_pids, cpu_seconds, pss_kb, sipp_outcome, stop, thread_cpu  # noqa: E402


def tandem_command(tandem, port, work, database):
    return [tandem, "--config", os.path.join(ROOT, "Config/tandem.conf"), "--set", f"sip.listen=udp:127.0.0.1:{port}",
            "--set", "auth.trusted_sources=127.0.0.1", "--set", f"storage.path={database}",
            "--set", f"admin.socket={work}/tandem.sock", "--set", "log.level=warning"]


def wait_for_socket(path, process, work):
    for _ in range(200):
        if os.path.exists(path):
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit(f"tandem did not start; see {work}/tandem.log")


def rpc_batches(path, requests, size=500):
    """JSON-RPC 2.0 batches over the admin socket; every answer must be a result."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    reader = client.makefile("r")
    for start in range(0, len(requests), size):
        batch = [dict(jsonrpc="2.0", id=start + k, method=m, params=p) for k, (m, p) in enumerate(requests[start:start + size])]
        client.sendall((json.dumps(batch) + "\n").encode())
        for answer in json.loads(reader.readline()):
            if "error" in answer:
                sys.exit(f"provisioning failed: {answer['error']}")
    client.close()


def provision(work, households, tandem, tandemctl, busy_port, answer_port):
    """The seed file: households, their numbers and every user's binding."""
    with open(f"{work}/registry.csv", "w") as f:
        f.write("record,account_id,name,plan,user_id,display_name,role,sip_username,password,number,kind,owner\n")
        for i in range(households):
            f.write(f"account,h{i:05d},Household {i},family,,,,,,,,\n")
            f.write(f"user,h{i:05d},,,p{i:05d},Primary {i},primary,p{i:05d},secret-{i:05d},,,\n")
            f.write(f"user,h{i:05d},,,m{i:05d},Member {i},member,m{i:05d},secret-{i:05d},,,\n")
            f.write(f"number,h{i:05d},,,,,,,,+3310{i:07d},household,\n")
            f.write(f"number,h{i:05d},,,,,,,,+3360{i:07d},personal,p{i:05d}\n")
    port = free_port()
    process = subprocess.Popen(tandem_command(tandem, port, work, f"{work}/seed.db"), stderr=open(f"{work}/tandem.log", "a"),
                               stdout=subprocess.DEVNULL, start_new_session=True)
    wait_for_socket(f"{work}/tandem.sock", process, work)
    subprocess.run([tandemctl, "--socket", f"{work}/tandem.sock", "plan.create", "name=family", "max_concurrent:=100"], check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([tandemctl, "--socket", f"{work}/tandem.sock", "import", f"{work}/registry.csv"], check=True,
                         capture_output=True, text=True).stdout
    report = json.loads(out)
    if report.get("failed"):
        sys.exit(f"import failed: {report}")
    bindings = []
    for i in range(households):
        bindings.append(("location.add", {"user": f"p{i:05d}", "contact": f"sip:p{i:05d}@127.0.0.1:{answer_port}", "expires": 31536000}))
        bindings.append(("location.add", {"user": f"m{i:05d}", "contact": f"sip:m{i:05d}@127.0.0.1:{busy_port}", "expires": 31536000}))
    rpc_batches(f"{work}/tandem.sock", bindings)
    stop(process)
    if os.path.exists(f"{work}/tandem.sock"):
        os.remove(f"{work}/tandem.sock")
    numbers = [f"+3310{i:07d}" for i in range(households)] + [f"+3360{i:07d}" for i in range(households)]
    random.Random(7).shuffle(numbers)
    with open(f"{work}/calls.csv", "w") as f:
        f.write("SEQUENTIAL\n")
        for number in numbers:
            f.write(f"{number}\n")


def tandem_step(rate, seconds, work, tandem, busy_port, answer_port):
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(f"{work}/step.db{suffix}"):
            os.remove(f"{work}/step.db{suffix}")
    for suffix in ["", "-wal"]:
        if os.path.exists(f"{work}/seed.db{suffix}"):
            shutil.copy(f"{work}/seed.db{suffix}", f"{work}/step.db{suffix}")
    calls = rate * seconds
    limit = seconds + 30
    proxy_port, uac_port = free_port(), free_port()
    proxy = subprocess.Popen(tandem_command(tandem, proxy_port, work, f"{work}/step.db"), stderr=open(f"{work}/tandem.log", "a"),
                             stdout=subprocess.DEVNULL, start_new_session=True)
    wait_for_socket(f"{work}/tandem.sock", proxy, work)
    uases = [subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, f"tools/sipp/{scenario}"), "-i", "127.0.0.1", "-p", str(port),
                               "-nostdin", "-timeout", f"{limit}s", "-buff_size", "4194304"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for scenario, port in [("uas.xml", answer_port), ("uas-busy.xml", busy_port)]]
    time.sleep(0.5)
    pids = group_pids(proxy.pid)
    before, threads_before = cpu_seconds(pids), thread_cpu(pids)
    stat = f"{work}/product-{rate}.csv"
    uac = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/uac-users.xml"), f"127.0.0.1:{proxy_port}",
                            "-i", "127.0.0.1", "-p", str(uac_port), "-inf", f"{work}/calls.csv", "-m", str(calls), "-r", str(rate),
                            "-l", str(rate * 4), "-nostdin", "-timeout", f"{limit}s", "-timeout_error",
                            "-buff_size", "4194304", "-trace_stat", "-stf", stat, "-fd", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak = 0
    while uac.poll() is None:
        peak = max(peak, pss_kb(group_pids(proxy.pid)))
        time.sleep(0.5)
    pids = group_pids(proxy.pid)
    after, threads_after = cpu_seconds(pids), thread_cpu(pids)
    for uas in uases:
        stop(uas)
    stop(proxy)
    os.remove(f"{work}/tandem.sock") if os.path.exists(f"{work}/tandem.sock") else None
    ok, failed = sipp_outcome(stat, calls)
    database = sqlite3.connect(f"{work}/step.db")
    records = database.execute("SELECT count(*), count(DISTINCT call_id) FROM cdrs").fetchone()
    answered = database.execute("SELECT count(*) FROM cdrs WHERE disposition = 'answered'").fetchone()[0]
    database.close()
    spent = {k: sum(v) - sum(threads_before.get(k, (0, 0))) for k, v in threads_after.items()}
    threads = ", ".join(f"{k} {v / ok * 1e6:.0f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if ok and v / ok * 1e6 >= 1)
    return ok, failed, (after - before) / ok * 1e6 if ok else float("nan"), peak / 1024, records, answered, threads


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="1000,2000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--households", type=int, default=10000)
    parser.add_argument("--tandem", required=True)
    parser.add_argument("--tandemctl", required=True)
    parser.add_argument("--only", choices=["tandem", "kamailio"])
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    work = tempfile.mkdtemp(prefix="tandem-product-bench-")
    busy_port, answer_port = free_port(), free_port()
    if args.only != "kamailio":
        started = time.time()
        provision(work, args.households, args.tandem, args.tandemctl, busy_port, answer_port)
        print(f"provisioned {args.households} households ({2 * args.households} users, numbers and bindings) "
              f"in {time.time() - started:.0f} s", flush=True)
    results = {"tandem": {}, "kamailio": {}}
    if args.only != "kamailio":
        for rate in rates:
            ok, failed, cpu, peak, records, answered, threads = tandem_step(rate, args.seconds, work, args.tandem, busy_port, answer_port)
            one_each = records[0] == ok + failed and records[1] == records[0]
            print(f"tandem product {rate:6d} calls/s: {ok:7d} ok {failed:5d} failed  {cpu:7.1f} CPU-us/call  peak {peak:6.1f} MB  "
                  f"records {records[0]} ({answered} answered){'' if one_each else '  NOT ONE PER CALL'}", flush=True)
            print(f"  threads, CPU-us/call: {threads}", flush=True)
            if failed or not one_each:
                break
            results["tandem"][rate] = cpu
    if args.only != "tandem" and shutil.which("kamailio"):
        for rate in rates:
            ok, failed, cpu, peak = proxy_bench.step("kamailio", rate, args.seconds, work, args.tandem)
            print(f"kamailio proxy {rate:6d} calls/s: {ok:7d} ok {failed:5d} failed  {cpu:7.1f} CPU-us/call  peak {peak:6.1f} MB", flush=True)
            if failed:
                break
            results["kamailio"][rate] = cpu
    for rate in sorted(set(results["tandem"]) & set(results["kamailio"])):
        print(f"Tandem product path / Kamailio proxy path, CPU per call at {rate}/s: "
              f"{results['tandem'][rate] / results['kamailio'][rate]:.2f}")
    if os.environ.get("TANDEM_BENCH_KEEP"):
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
