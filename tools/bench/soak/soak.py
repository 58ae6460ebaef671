"""The soak: Tandem proxies sipp calls at a steady rate for a long run while a named push subscriber
listens to every call event on the admin socket. At the end it checks, exactly:

- call records (cdr.list total) == calls sipp made; answered records == sipp's successful calls;
- the event log holds one call.ended per record and one call.incoming per call;
- the subscriber received every call.* event of the log, each once, in order;
and reports resident memory over the run (flat: the last minute within 10% + 8 MB of the second).
Exits non-zero when a check fails."""
import argparse, csv, json, os, re, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
import bench  # noqa: E402  (the proxy benchmark's harness: ports, process control, sipp outcome)


class Admin:
    """One admin connection: newline-delimited JSON-RPC; notifications go to `on_notification`."""

    def __init__(self, path, on_notification=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.on_notification = on_notification
        self.next_id = 1
        self.answers = {}
        self.lock = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.file:
            message = json.loads(line)
            if "id" in message and "method" not in message:
                with self.lock:
                    self.answers[message["id"]] = message
                    self.lock.notify_all()
            elif self.on_notification:
                self.on_notification(message)

    def call(self, method, **params):
        with self.lock:
            request_id = self.next_id
            self.next_id += 1
        self.sock.sendall((json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + "\n").encode())
        with self.lock:
            while request_id not in self.answers:
                if not self.lock.wait(120):
                    sys.exit(f"no answer to {method}")
            answer = self.answers.pop(request_id)
        if "error" in answer:
            sys.exit(f"{method}: {answer['error']}")
        return answer["result"]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pull_all(admin, types):
    events, cursor = [], 0
    while True:
        page = admin.call("events.pull", since=cursor, types=types, limit=10000)
        events += page["events"]
        cursor = page["cursor"]
        if not page["more"]:
            return events


def explain_failures(work, rows):
    """Lines of sipp's error logs naming a Call-ID, each with Tandem's record of that call."""
    by_call = {row["call_id"]: row for row in rows}
    for side in ("uac", "uas"):
        path = f"{work}/{side}-errors.log"
        if not os.path.exists(path):
            continue
        text = open(path, errors="replace").read()
        print(f"{side} error log ({path}):")
        for line in text.splitlines()[:40]:
            print(f"  {line}")
        for call_id in sorted({m for m in re.findall(r"Call-I[Dd]: *(\S+)", text)})[:20]:
            row = by_call.get(call_id)
            print(f"  {call_id}: " + (f"{row['disposition']} code={row.get('sip_code')} duration_ms={row.get('duration_ms')} end={row.get('end_reason')}"
                                      if row else "no record"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--tandem", required=True)
    args = parser.parse_args()
    calls = args.rate * args.seconds
    work = tempfile.mkdtemp(prefix="tandem-soak-")
    proxy_port, uas_port, uac_port = bench.free_port(), bench.free_port(), bench.free_port()
    proxy = bench.start_proxy("tandem", proxy_port, uas_port, work, args.tandem)
    try:
        run(args, calls, work, proxy, proxy_port, uas_port, uac_port)
    finally:
        bench.stop(proxy)


def run(args, calls, work, proxy, proxy_port, uas_port, uac_port):

    received = []
    notices = []

    def on_notification(message):
        if message.get("method") == "events.event":
            received.append(message["params"]["event"]["id"])
        else:
            notices.append(message)

    subscriber = Admin(f"{work}/tandem.sock", on_notification)
    subscribed = subscriber.call("events.subscribe", types=["call.*"], name="soak")
    limit = args.seconds + 60
    uas = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/uas.xml"), "-i", "127.0.0.1", "-p", str(uas_port),
                            "-nostdin", "-timeout", f"{limit}s", "-buff_size", "4194304",
                            "-trace_err", "-error_file", f"{work}/uas-errors.log"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)
    stat = f"{work}/uac.csv"
    started = time.time()
    uac = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tools/sipp/uac.xml"), f"127.0.0.1:{proxy_port}",
                            "-i", "127.0.0.1", "-p", str(uac_port), "-s", "soak", "-m", str(calls), "-r", str(args.rate),
                            "-l", str(args.rate * 4), "-nostdin", "-timeout", f"{limit}s", "-timeout_error",
                            "-buff_size", "4194304", "-trace_stat", "-stf", stat, "-fd", "5",
                            "-trace_err", "-error_file", f"{work}/uac-errors.log"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    samples = []
    cpu_before = bench.cpu_seconds({proxy.pid})
    while uac.poll() is None:
        samples.append((time.time() - started, rss_kb(proxy.pid)))
        if len(samples) % 6 == 1:
            print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1] / 1024:7.1f} MB  events pushed {len(received)}", flush=True)
        time.sleep(10)
    cpu = bench.cpu_seconds({proxy.pid}) - cpu_before
    elapsed = time.time() - started
    bench.stop(uas)
    ok, failed = bench.sipp_outcome(stat, calls)

    admin = Admin(f"{work}/tandem.sock")
    # The records, exported whole (cdr.export and events.pull flush the call log first).
    export = admin.call("cdr.export", path=f"{work}/cdr.csv")
    rows = list(csv.DictReader(open(f"{work}/cdr.csv")))
    records = len(rows)
    answered = sum(1 for row in rows if row["disposition"] == "answered")
    distinct_calls = len({row["call_id"] for row in rows})
    ended = pull_all(admin, ["call.ended"])
    incoming = pull_all(admin, ["call.incoming"])
    logged = [event["id"] for event in pull_all(admin, ["call.*"])]
    deadline = time.time() + 30
    while len(received) < len(logged) and time.time() < deadline:
        time.sleep(0.2)
    stats = admin.call("stats.get")
    bench.stop(proxy)

    second = [kb for t, kb in samples if 60 <= t < 120] or [samples[0][1]]
    last = [kb for t, kb in samples if t >= elapsed - 60] or [samples[-1][1]]
    early, late = sum(second) / len(second), sum(last) / len(last)
    checks = [
        (f"call records == calls sipp made ({ok + failed})", records == ok + failed == export["rows"]),
        ("one record per call (no duplicates)", distinct_calls == records),
        (f"answered records == sipp's successful calls ({ok})", answered == ok),
        ("one call.ended per record", len(ended) == records and len({e["payload"]["cdr_id"] for e in ended}) == records),
        ("one call.incoming per call", len(incoming) == ok + failed),
        (f"subscriber received every call event in order ({len(logged)})", received == logged),
        ("no overflow or other notice", not notices),
        ("resident memory flat (last minute within 10% + 8 MB of the second)", late <= early * 1.10 + 8192),
    ]
    print()
    print(f"Soak: {args.rate} calls/s for {elapsed:.0f} s: {ok} successful, {failed} failed sipp calls; "
          f"{cpu / max(ok, 1) * 1e6:.0f} CPU-µs per call")
    print(f"RSS: {samples[0][1] / 1024:.1f} MB at start, {early / 1024:.1f} MB in the second minute, "
          f"{late / 1024:.1f} MB in the last minute, peak {max(kb for _, kb in samples) / 1024:.1f} MB")
    print(f"Records {records} (answered {answered}); call.ended {len(ended)}; call.* events {len(logged)}, pushed {len(received)}; "
          f"subscription started at cursor {subscribed['cursor']}")
    print(f"events counters: { {k: v for k, v in stats.get('events', {}).items()} }")
    for name, passed in checks:
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    if not all(passed for _, passed in checks):
        explain_failures(work, rows)
        print(f"work folder kept: {work}")
        sys.exit(1)
    import shutil
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
