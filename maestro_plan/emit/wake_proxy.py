"""Wake proxy of a warm-standby swap slot (shipped verbatim in a ConfigMap; standard library only).

The emitted pod of a swap slot runs one sleeping `vllm serve --enable-sleep-mode` engine per model
the slot swaps, each on 127.0.0.1:<model port + 10000>. This proxy listens on every model's port
(the one its Service and InferencePool target) and forwards each request to its engine. Before it
forwards, it makes that engine the awake one: it waits until the slot's other engines have no
request in flight, puts them to sleep (POST /sleep?level=1), and wakes the target (POST /wake_up).
That is the wake path: LiteLLM and the Gateway API have no hook that calls /wake_up (a router sees
only an OpenAI-compatible endpoint, and a sleeping vLLM answers 503), so the slot itself wakes on
demand; the first request after a swap waits for the wake-up, which is the cold start the plan priced.

Usage: python3 wake_proxy.py PUBLIC_PORT=ENGINE_PORT [PUBLIC_PORT=ENGINE_PORT ...]
GET /health on a public port answers 200 when the engine's /health does (sleeping engines answer it).
"""

from __future__ import annotations

import http.client
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate", "host"}
WAKE_TIMEOUT_S = 600.0


class Slot:
    """Which engine of the slot is awake, and how many requests each has in flight."""

    def __init__(self, engine_ports: list[int], host: str = "127.0.0.1") -> None:
        self.host = host
        self.awake: int | None = None  # every engine sleeps after the pod's start-up script
        self.inflight = dict.fromkeys(engine_ports, 0)
        self.cond = threading.Condition()

    def _post(self, port: int, path: str) -> None:
        conn = http.client.HTTPConnection(self.host, port, timeout=WAKE_TIMEOUT_S)
        try:
            conn.request("POST", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"POST {path} on port {port}: HTTP {resp.status}")
        finally:
            conn.close()

    def acquire(self, port: int) -> None:
        """Make `port` the awake engine (sleeping the others once idle) and count one request on it."""
        with self.cond:
            while self.awake != port and any(n for p, n in self.inflight.items() if p != port):
                self.cond.wait()
            if self.awake != port:
                if self.awake is not None:
                    self._post(self.awake, "/sleep?level=1")
                    self.awake = None
                self._post(port, "/wake_up")
                self.awake = port
            self.inflight[port] += 1

    def release(self, port: int) -> None:
        with self.cond:
            self.inflight[port] -= 1
            self.cond.notify_all()


def make_handler(slot: Slot, engine_port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            health = self.command == "GET" and self.path == "/health"
            if not health:
                slot.acquire(engine_port)
            try:
                conn = http.client.HTTPConnection(slot.host, engine_port, timeout=WAKE_TIMEOUT_S)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while chunk := resp.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
                conn.close()
            except OSError as exc:
                self.send_error(502, f"engine on port {engine_port}: {exc}")
            finally:
                if not health:
                    slot.release(engine_port)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
            sys.stderr.write("wake-proxy: " + (format % args) + "\n")

    return Handler


def serve(routes: dict[int, int], host: str = "0.0.0.0", engine_host: str = "127.0.0.1") -> list[ThreadingHTTPServer]:
    """Start one server thread per public port; returns the servers (shut them down to stop)."""
    slot = Slot(sorted(routes.values()), engine_host)
    servers = []
    for public, engine in sorted(routes.items()):
        srv = ThreadingHTTPServer((host, public), make_handler(slot, engine))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    return servers


def parse_routes(argv: list[str]) -> dict[int, int]:
    routes = {}
    for a in argv:
        public, _, engine = a.partition("=")
        routes[int(public)] = int(engine)
    if not routes:
        raise SystemExit("usage: wake_proxy.py PUBLIC_PORT=ENGINE_PORT ...")
    return routes


if __name__ == "__main__":
    servers = serve(parse_routes(sys.argv[1:]))
    threading.Event().wait()
