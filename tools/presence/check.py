"""tools/presence-check: the presence server with real parts (see the wrapper for what passes).

tandem (release build) on a SQLite file and a UDP socket; the watcher is a UDP socket of this
script speaking SIP as a phone would (SUBSCRIBE, 200 to each NOTIFY); changes come through the admin
socket. tandem is killed with SIGKILL in the middle and started again on the same file."""
import argparse, json, os, re, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "pylib"))
from tandem_admin import Admin, free_port  # noqa: E402


def fail(message):
    sys.exit(f"presence-check: FAILED — {message}")


class Tandem:
    def __init__(self, binary, work, port):
        self.binary, self.work, self.port = binary, work, port
        self.process = None

    def start(self):
        socket_path = os.path.join(self.work, "tandem.sock")
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        log = open(os.path.join(self.work, "tandem.log"), "a")
        self.process = subprocess.Popen([
            self.binary, "--config", os.path.join(ROOT, "Config/tandem.conf"),
            "--set", f"sip.listen=udp:127.0.0.1:{self.port}", "--set", "auth.trusted_sources=127.0.0.1",
            "--set", f"storage.path={self.work}/tandem.db", "--set", f"admin.socket={socket_path}", "--set", "log.level=info",
        ], stderr=log)
        for _ in range(100):
            if os.path.exists(socket_path):
                return Admin(socket_path, "presence-check")
            time.sleep(0.05)
        fail("tandem did not start")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class Watcher:
    """Bob's phone: one UDP socket, one subscription to Alice."""

    def __init__(self, tandem_port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tandem = ("127.0.0.1", tandem_port)
        self.call_id = f"presence-check-{os.getpid()}@127.0.0.1"
        self.cseq = 0
        self.notifier_tag = None
        self.notify_cseqs = []

    def subscribe(self, expires, in_dialog=False):
        self.cseq += 1
        to = f"<sip:alice@127.0.0.1:{self.tandem[1]}>" + (f";tag={self.notifier_tag}" if in_dialog else "")
        uri = f"sip:127.0.0.1:{self.tandem[1]}" if in_dialog else f"sip:alice@127.0.0.1:{self.tandem[1]}"
        message = (f"SUBSCRIBE {uri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKpc{self.cseq}x{time.time_ns()};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1:{self.tandem[1]}>;tag=bobwatch\r\nTo: {to}\r\n"
                   f"Call-ID: {self.call_id}\r\nCSeq: {self.cseq} SUBSCRIBE\r\nContact: <sip:bob@127.0.0.1:{self.port}>\r\n"
                   f"Event: presence\r\nAccept: application/pidf+xml\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(message.encode(), self.tandem)

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data, source = self.sock.recvfrom(65535)
        except socket.timeout:
            return None
        return data.decode(), source

    @staticmethod
    def header(text, name):
        match = re.search(rf"^{name}:\s*(.*?)\r$", text, re.M | re.I)
        return match.group(1) if match else None

    def next_notify(self, timeout=1.0, answer=True):
        """The next NOTIFY (answered 200 unless told not to); its state, CSeq, Subscription-State, delay."""
        start = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - start)
            got = self.receive(max(left, 0.001))
            if got is None:
                return None
            text, source = got
            if not text.startswith("NOTIFY "):
                continue
            cseq = int(self.header(text, "CSeq").split()[0])
            if self.notify_cseqs and cseq == self.notify_cseqs[-1]:
                continue  # a retransmission
            self.notify_cseqs.append(cseq)
            state = re.search(r"<c:connectability>([a-z_]+)</c:connectability>", text)
            if answer:
                self.answer(text, source)
            return {"state": state.group(1) if state else None, "cseq": cseq, "subscription": self.header(text, "Subscription-State"),
                    "delay": time.monotonic() - start, "text": text, "source": source}

    def answer(self, text, source):
        lines = [f"{name}: {self.header(text, name)}" for name in ("Via", "From", "To", "Call-ID", "CSeq")]
        self.sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), source)

    def expect_ok(self):
        got = self.receive(2)
        if got is None or not got[0].startswith("SIP/2.0 200"):
            fail(f"SUBSCRIBE not answered 200: {got and got[0].splitlines()[0]}")
        tag = re.search(r"^To:.*;tag=([^;\r]+)", got[0], re.M)
        self.notifier_tag = tag.group(1)


def expect_state(watcher, state, what, worst):
    notify = watcher.next_notify()
    if notify is None or notify["state"] != state:
        fail(f"{what}: expected a NOTIFY with {state} within 1 s, got {notify and (notify['state'], notify['subscription'])}")
    worst.append(notify["delay"])
    print(f"  {what}: NOTIFY {state} (CSeq {notify['cseq']}) after {notify['delay'] * 1000:.1f} ms")
    return notify


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tandem", required=True)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="presence-check-")
    port = free_port(socket.SOCK_DGRAM)
    tandem = Tandem(args.tandem, work, port)
    admin = tandem.start()
    try:
        admin.call("account.create", id="smith", name="The Smiths")
        admin.call("user.create", account="smith", id="alice", display_name="Alice", role="primary", sip_username="alice", password="wonderland")
        admin.call("user.create", account="smith", id="bob", display_name="Bob", role="member", sip_username="bob", password="bob-secret1")
        admin.call("availability.define", user="alice", definition={"modes": [{"name": "meeting", "state": "not_available"},
                                                                               {"name": "away", "state": "transfer", "target": "+33699999999"}]})
        watcher = Watcher(port)
        worst = []
        watcher.subscribe(600)
        watcher.expect_ok()
        expect_state(watcher, "unknown", "subscribed, no device", worst)
        admin.call("location.add", user="alice", contact="sip:alice@192.0.2.20:5060", expires=3600)
        expect_state(watcher, "connectable", "a device registered", worst)
        admin.call("availability.set", user="alice", mode="meeting")
        expect_state(watcher, "not_connectable", "override set", worst)

        # A burst while a NOTIFY is unanswered: the states seen must end with the newest one and
        # never go back to an older one.
        admin.call("availability.set", user="alice", mode="away")
        first = watcher.next_notify(answer=False)
        if first is None or first["state"] != "in_transfer":
            fail(f"burst: first NOTIFY {first and first['state']}")
        sequence = [None, "meeting", "away", None, "meeting", None]
        for mode in sequence:
            admin.call("availability.set", user="alice", mode=mode)
        if watcher.next_notify(timeout=0.3, answer=False) is not None:
            fail("a second NOTIFY left while the first was unanswered")
        watcher.answer(first["text"], first["source"])
        last = expect_state(watcher, "connectable", "burst of 6 changes, after the answer", worst)
        if watcher.next_notify(timeout=0.5) is not None:
            fail("the burst sent more than the newest state")

        # SIGKILL, restart on the same file: the subscription comes back and Bob hears the state.
        admin.call("availability.set", user="alice", mode="meeting")
        expect_state(watcher, "not_connectable", "before the crash", worst)
        time.sleep(0.1)
        tandem.kill()
        admin = tandem.start()
        restored = expect_state(watcher, "not_connectable", "restored after kill -9", [])
        if restored["cseq"] <= last["cseq"]:
            fail(f"CSeq went back after the restart: {restored['cseq']} after {last['cseq']}")
        admin.call("availability.set", user="alice", mode=None)
        expect_state(watcher, "connectable", "override cleared after the restart", worst)

        # A refresh, then the end.
        watcher.subscribe(300, in_dialog=True)
        watcher.expect_ok()
        expect_state(watcher, "connectable", "refreshed", worst)
        watcher.subscribe(0, in_dialog=True)
        watcher.expect_ok()
        end = watcher.next_notify()
        if end is None or not end["subscription"].startswith("terminated"):
            fail(f"no terminating NOTIFY: {end}")
        admin.call("availability.set", user="alice", mode="meeting")
        if watcher.next_notify(timeout=0.5) is not None:
            fail("a NOTIFY after the subscription ended")
        subscriptions = admin.call("presence.subscriptions")["subscriptions"]
        if subscriptions:
            fail(f"subscriptions left: {subscriptions}")
        print(f"presence-check: PASSED — {len(watcher.notify_cseqs)} NOTIFYs, slowest after a change {max(worst) * 1000:.1f} ms, "
              "a burst coalesced to its newest state, the subscription restored after kill -9")
    finally:
        tandem.kill()


if __name__ == "__main__":
    main()
