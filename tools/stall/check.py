"""tools/stall-check: stalled peers do not reach other calls (see the wrapper for what passes).

Parts, all real: tandem (release build) on a SQLite file, sipp UAC → tandem → sipp UAS for the
default route, a second sipp UAC calling a user whose only device is a sipp UAS stopped with SIGSTOP,
three HTTP receivers for three app providers' webhooks (200, 500 for ever, never answers), and an
admin client churning app activations so that each provider is owed events."""
import argparse, http.server, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "pylib"))
from tandem_admin import Admin, free_port  # noqa: E402
BOB = "+33612345678"
CHURN_NUMBER = "+33699999999"


def receiver(mode, received):
    """An HTTP receiver on loopback: 'ok' answers 204 and keeps each body, 'fail' answers 500,
    'hang' reads the request and never answers (its connections are kept open)."""
    if mode == "hang":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        held = []

        def accept():
            while True:
                connection, _ = server.accept()
                held.append(connection)
                received.append(b"")
        threading.Thread(target=accept, daemon=True).start()
        return server.getsockname()[1]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(body)
            self.send_response(204 if mode == "ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sipp_counts(path):
    rows = [line.rstrip("\n").split(";") for line in open(path) if line.strip()]
    header, last = rows[0], rows[-1]
    get = lambda name: int(last[header.index(name)])
    return get("TotalCallCreated"), get("SuccessfulCall(C)"), get("FailedCall(C)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tandem", required=True)
    parser.add_argument("--tandemctl", required=True)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tandem-stall-")
    processes = []
    stopped_phone = None

    def cleanup():
        if stopped_phone is not None:
            try: os.kill(stopped_phone.pid, signal.SIGCONT)
            except OSError: pass
        for p in processes:
            if p.poll() is None:
                p.kill()
        for p in processes:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)

    try:
        proxy, uas, phone, uac, uac_bob = (free_port(socket.SOCK_DGRAM) for _ in range(5))
        tandem = subprocess.Popen([
            args.tandem, "--config", os.path.join(ROOT, "Config/tandem.conf"),
            "--set", f"sip.listen=udp:127.0.0.1:{proxy}", "--set", f"routing.default_route=sip:127.0.0.1:{uas}",
            "--set", "auth.trusted_sources=127.0.0.1", "--set", f"storage.path={work}/tandem.db",
            "--set", f"admin.socket={work}/tandem.sock", "--set", "log.level=warning",
            # A phone that stops after ringing is cancelled by Timer C; 10 s keeps the check short.
            "--set", "sip.timer_c=10",
            "--set", "events.webhook_timeout=1000", "--set", "events.webhook_attempts=3",
            "--set", "events.webhook_backoff=200", "--set", "events.webhook_max_backoff=1000"],
            stderr=open(f"{work}/tandem.log", "w"), stdout=subprocess.DEVNULL)
        processes.append(tandem)
        for _ in range(100):
            if os.path.exists(f"{work}/tandem.sock"): break
            time.sleep(0.1)
        admin = Admin(f"{work}/tandem.sock", "stall-check")

        received = {"ok": [], "fail": [], "hang": []}
        for mode in received:
            port = receiver(mode, received[mode])
            admin.call("provider.create", id=f"p-{mode}", name=f"Provider {mode}", kind="app", hops=["sip:127.0.0.1:9"],
                       domain=f"{mode}.example.net", webhook_url=f"http://127.0.0.1:{port}/events")
            admin.call("app.create", id=f"app-{mode}", provider=f"p-{mode}", name=f"App {mode}", kind="screening", position=100)
        admin.call("provider.create", id="telco", name="Telco", kind="carrier")
        admin.call("account.create", id="smith", name="The Smiths", time_zone="Europe/Paris")
        admin.call("user.create", account="smith", id="bob", display_name="Bob", role="primary", sip_username="bob", password="bob-secret-1")
        admin.call("number.create", account="smith", kind="personal", number=BOB, owner="bob", provider="telco")
        admin.call("number.create", account="smith", kind="household", number=CHURN_NUMBER, provider="telco")
        admin.call("location.add", user="bob", contact=f"sip:bob@127.0.0.1:{phone}", expires=3600)

        limit = args.seconds + 60
        processes.append(subprocess.Popen(["sipp", "-sf", f"{ROOT}/tools/sipp/uas.xml", "-i", "127.0.0.1", "-p", str(uas), "-t", "u1",
                                           "-nostdin", "-timeout", f"{limit}s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        stopped_phone = subprocess.Popen(["sipp", "-sf", f"{ROOT}/tools/sipp/uas.xml", "-i", "127.0.0.1", "-p", str(phone), "-t", "u1",
                                          "-nostdin", "-timeout", f"{limit}s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(stopped_phone)
        time.sleep(1)
        rss_start = rss_mb(tandem.pid)
        calls = args.rate * args.seconds
        bob_rate = max(1, args.rate // 10)
        bob_calls = bob_rate * args.seconds
        uac_default = subprocess.Popen([
            "sipp", "-sf", f"{ROOT}/tools/sipp/uac.xml", f"127.0.0.1:{proxy}", "-i", "127.0.0.1", "-p", str(uac), "-t", "u1",
            "-s", "5000", "-m", str(calls), "-r", str(args.rate), "-l", str(args.rate * 4), "-nostdin", "-timeout", f"{limit}s",
            "-timeout_error", "-trace_stat", "-stf", f"{work}/default.csv"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        uac_phone = subprocess.Popen([
            "sipp", "-sf", f"{ROOT}/tools/sipp/uac.xml", f"127.0.0.1:{proxy}", "-i", "127.0.0.1", "-p", str(uac_bob), "-t", "u1",
            "-s", BOB, "-m", str(bob_calls), "-r", str(bob_rate), "-nostdin", "-timeout", f"{limit}s",
            "-trace_stat", "-stf", f"{work}/phone.csv"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes += [uac_default, uac_phone]

        # Provisioning churn: each app activated and deactivated in turn, about 30 events a second.
        churned = {mode: 0 for mode in received}
        start = time.time()
        stopped_at = None
        rss_peak = rss_start
        while time.time() - start < args.seconds:
            for mode in received:
                admin.call("app.activate", app=f"app-{mode}", number=CHURN_NUMBER)
                admin.call("app.deactivate", app=f"app-{mode}", number=CHURN_NUMBER)
                churned[mode] += 2
            if stopped_at is None and time.time() - start > args.seconds / 3:
                os.kill(stopped_phone.pid, signal.SIGSTOP)
                stopped_at = time.time() - start
            rss_peak = max(rss_peak, rss_mb(tandem.pid))
            time.sleep(0.2)
        uac_default.wait()
        # Calls to the stopped phone end by Timer B (32 s) or Timer C (10 s) at the latest.
        uac_phone.wait()
        statistics = {}
        for _ in range(60):
            statistics = admin.call("stats.get")
            if statistics["calls_in_progress"] == 0 and len(received["ok"]) >= churned["ok"]:
                break
            rss_peak = max(rss_peak, rss_mb(tandem.pid))
            time.sleep(1)
        rss_end = rss_mb(tandem.pid)

        created, ok, failed = sipp_counts(f"{work}/default.csv")
        phone_created, phone_ok, phone_failed = sipp_counts(f"{work}/phone.csv")
        records = admin.call("cdr.list", number=BOB, limit=10000)["records"]
        to_phone = [r for r in records if r["destination"] == BOB]
        keys = {(r["call_id"], r["from_tag"]) for r in to_phone}
        dispositions = {}
        for r in to_phone:
            dispositions[r["disposition"]] = dispositions.get(r["disposition"], 0) + 1
        delivered = [json.loads(body) for body in received["ok"]]
        ids = [event["id"] for event in delivered]
        events = statistics.get("events", {})
        print(f"stall-check: {created} default-route calls at {args.rate}/s: {ok} successful, {failed} failed; "
              f"phone stopped at {stopped_at:.1f} s: {phone_created} calls to it, {phone_ok} answered before, {len(to_phone)} records "
              f"({len(keys)} distinct; {dispositions}); calls in progress at the end {statistics['calls_in_progress']}; "
              f"webhooks: ok received {len(delivered)} of {churned['ok']} in order {ids == sorted(ids)}, "
              f"500-receiver {len(received['fail'])} attempts, silent receiver {len(received['hang'])} connections, "
              f"given up {events.get('webhook_given_up')}, failed attempts {events.get('webhook_failed_attempts')}; "
              f"tandem RSS {rss_start:.0f} MB at the start, {rss_peak:.0f} MB peak, {rss_end:.0f} MB at the end")
        failures = []
        if failed or ok != calls: failures.append("a default-route call failed")
        if phone_created != bob_calls or len(to_phone) != phone_created or len(keys) != len(to_phone):
            failures.append("a call to the stopped phone has no record, or two")
        if statistics["calls_in_progress"] != 0: failures.append("calls were left open")
        if phone_ok >= phone_created or phone_ok == 0: failures.append("the phone was not stopped mid-run")
        if len(delivered) != churned["ok"] or ids != sorted(ids): failures.append("the healthy webhook missed events")
        if not received["fail"] or not received["hang"]: failures.append("the failing receivers were not tried")
        if not events.get("webhook_given_up"): failures.append("no delivery was given up")
        if rss_peak - rss_start > 64: failures.append("memory grew by more than 64 MB")
        if tandem.poll() is not None: failures.append("tandem died")
        if failures:
            print("stall-check: FAILED: " + "; ".join(failures))
            print(open(f"{work}/tandem.log").read()[-3000:])
            return 1
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
