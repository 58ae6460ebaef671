"""Helpers the Python checks share: a free loopback port and a client of tandem's admin socket."""
import json
import socket
import sys


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Admin:
    """A JSON-RPC client on the admin socket; every answer must be a result, else the check `name`
    stops with the error."""

    def __init__(self, path, name):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.reader = self.sock.makefile("r")
        self.next = 1
        self.name = name

    def call(self, method, **params):
        self.next += 1
        self.sock.sendall((json.dumps({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params}) + "\n").encode())
        while True:
            answer = json.loads(self.reader.readline())
            if answer.get("id") == self.next:
                break
        if "error" in answer:
            sys.exit(f"{self.name}: {method} failed: {answer['error']}")
        return answer["result"]
