"""A real HTTP endpoint on 127.0.0.1 for alert tests: records the JSON bodies POSTed to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class WebhookServer:
    """``with WebhookServer() as hook: ... hook.url ... hook.bodies``.

    ``status`` is the HTTP status answered; ``hold_seconds`` delays the answer (to
    test client timeouts) and is cut short when the server stops, so tests stay bounded.
    """

    def __init__(self, status: int = 200, hold_seconds: float = 0.0):
        self.status = status
        self.hold_seconds = hold_seconds
        self.bodies: list[dict] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/alerts"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook._stopping.wait(hook.hold_seconds)
                try:
                    self.send_response(hook.status)
                    self.end_headers()
                except ConnectionError:
                    pass  # the client gave up waiting, as a timeout test wants

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
