"""A real HTTP server on loopback serving test images: a good one, a slow one, a 404, a 500 that
recovers after two failures, an oversized body with and without a Content-Length."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def image_server(png: bytes, slow_s: float = 3.0, big: int = 4096):
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            if self.path == "/ok.png":
                return self._send(200, png)
            if self.path == "/slow.png":
                time.sleep(slow_s)
                return self._send(200, png)
            if self.path == "/flaky.png":  # fails twice, then serves
                return self._send(500, b"busy") if hits[self.path] <= 2 else self._send(200, png)
            if self.path == "/down.png":
                return self._send(503, b"down")
            if self.path == "/huge.png":
                return self._send(200, b"\0" * big)
            if self.path == "/huge-chunked.png":  # no Content-Length: the cap must hold while reading
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"\0" * big)
                return None
            return self._send(404, b"not found")

        def _send(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.protocol_version = "HTTP/1.0"  # close after each response: chunked bodies end at EOF
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
