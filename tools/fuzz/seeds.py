"""Writes the seed corpora of tools/fuzz/run: one folder per target under the folder given."""
import glob
import json
import os
import re
import sys

out = sys.argv[1]
PEERS = ["alice", "bob", "carrier", "trunk", "vm", "phone"]
ADDRESSES = {"alice": "127.0.0.1:5070", "bob": "127.0.0.1:5071", "carrier": "127.0.0.2:5080",
             "trunk": "127.0.0.1:5090", "vm": "127.0.0.1:5095", "phone": "127.0.0.1:5072", "gateway": "127.0.0.1:5060"}


def write(target, name, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def message(block):
    text = re.sub(r"\$\{([a-z_]+)\.addr\}", lambda m: ADDRESSES.get(m.group(1), "127.0.0.1:5070"), block)
    text = re.sub(r"\$\{[a-z_.]+\}", "x1", text).replace("\n", "\r\n")
    head, _, body = text.partition("\r\n\r\n")
    if "Content-Length: auto" in head:
        head = head.replace("Content-Length: auto", "Content-Length: %d" % len(body))
    return (head + "\r\n\r\n" + body).encode()


for path in sorted(glob.glob("Tests/Traces/*.trace")):
    name = os.path.basename(path)[:-6]
    text = open(path).read()
    write("trace", name, text)
    blocks = re.findall(r"^send (\S+)[^\n]*\n(.*?)\n\.$", text, re.S | re.M)
    for index, (_, block) in enumerate(blocks):
        write("sip", f"{name}-{index}", message(block))
    # The same exchange as a gateway script (FuzzTargets.swift, GatewayScript.run): each message
    # from its peer, the trunk answering what reached it, time passing.
    for trusting in (0, 1):
        script = bytearray([trusting])
        for peer, block in blocks:
            data = message(block)[:65535]
            number = PEERS.index(peer) if peer in PEERS else 0
            script += bytes([number * 8 + (3 if peer == "bob" else 0), len(data) >> 8, len(data) & 255]) + data
            script += bytes([3 * 8 + 6, 25, 0, 3 * 8 + 6, 45, 0, 4, 40, 0])
        write("gateway", f"{name}-{trusting}", bytes(script))
    for digest in re.findall(r'(?:Proxy-)?Authorization: (Digest [^\n]*)', text):
        write("digest", f"{name}-{len(digest)}", digest)
write("sip", "bench-invite", open("tools/bench/sip/invite.txt", "rb").read())
write("digest", "full", 'Digest username="alice", realm="tandem", nonce="0a1b", uri="sip:tandem.test", '
      'response="6629fae49393a05397450978507c4ef1", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c0ffee"')

write("config", "tandem.conf", open("Config/tandem.conf").read())
for path in glob.glob("Dialplans/*.dialplan"):
    write("dialplan", os.path.basename(path), open(path).read())
for path in glob.glob("docs/*.md"):
    for index, line in enumerate(open(path)):
        if '"jsonrpc"' in line and line.strip().startswith("{"):
            write("admin", f"{os.path.basename(path)}-{index}", line.strip() + "\n")
write("admin", "batch", "\n".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": m, "params": p}) for i, (m, p) in enumerate([
    ("account.create", {"id": "smith", "name": "S"}), ("user.create", {"account": "smith", "id": "alice", "display_name": "A", "sip_username": "alice", "role": "primary"}),
    ("number.create", {"number": "+33612345678", "account": "smith"}), ("availability.define", {"user": "alice", "definition": {"modes": [{"name": "m", "state": "not_available"}]}}),
    ("route.explain", {"to": "+33612345678"}), ("rate.list", {}), ("cdr.list", {}), ("system.methods", {})])) + "\n")
write("csv", "registry", "record,account_id,name,user_id,display_name,role,sip_username,password,number,kind,owner,provider_id\n"
      "account,smith,The Smiths,,,,,,,,,\nuser,smith,,alice,Alice,primary,alice,wonderland1,,,,\nnumber,smith,,,,,,,+33612345678,personal,alice,\n")
write("csv", "rates", 'prefix,rate_per_minute,connect_fee,minimum,increment,description\r\n+447,12,3,30,6,UK mobile\r\n+1,2,,,,"US, Canada"\r\n')
