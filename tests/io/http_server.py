"""A small range-capable HTTP server for remote-read tests: ``GET`` with one ``Range``, ``HEAD``,
an ETag per object (the MD5 of its bytes, or one the test sets), 404 for what it does not hold,
403 under ``/denied/`` (and under ``/private/`` without :data:`TOKEN`); it counts the requests
and the body bytes it sends, per path and method, so tests measure what a read really fetched."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
TOKEN = "Bearer rnnscope-test"  # what ``/private/`` objects need in ``Authorization``


class Served:
    """Objects by URL path (``/run/a.h5`` -> bytes); ``url(path)`` is their address."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.etags: dict[str, str | None] = {}  # a tag of the test's choosing, None: no tag
        self.requests: Counter[tuple[str, str]] = Counter()  # (method, path) -> count
        self.sent: Counter[str] = Counter()  # path -> body bytes sent
        self.lock = threading.Lock()
        served = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK wait per response

            def log_message(self, *args: Any) -> None:
                return None

            def do_HEAD(self) -> None:
                served._answer(self, body=False)

            def do_GET(self) -> None:
                served._answer(self, body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.sent.clear()

    def count(self, path: str, method: str | None = None) -> int:
        """Requests for ``path`` (of ``method``, or all)."""
        return sum(n for (m, p), n in self.requests.items() if p == path and method in (None, m))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, h: BaseHTTPRequestHandler, body: bool) -> None:
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.requests[(h.command, path)] += 1
        if path.startswith("/denied/") or (
            path.startswith("/private/") and h.headers.get("Authorization") != TOKEN
        ):
            return self._status(h, 403, b"Forbidden")
        data = self.objects.get(path)
        if data is None:
            return self._status(h, 404, b"Not Found")
        start, end, status = 0, len(data), 200
        m = _RANGE.match(h.headers.get("Range", ""))
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(len(data), int(m.group(2)) + 1) if m.group(2) else len(data)
            else:  # the last N bytes
                start = max(0, len(data) - int(m.group(2)))
            if start >= len(data):
                return self._status(h, 416, b"Range Not Satisfiable")
            status = 206
        chunk = data[start:end]
        h.send_response(status)
        h.send_header("Content-Length", str(len(chunk)))
        h.send_header("Accept-Ranges", "bytes")
        tag = self.etags.get(path, '"' + hashlib.md5(data).hexdigest() + '"')
        if tag is not None:
            h.send_header("ETag", tag)
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        h.end_headers()
        if body:
            with self.lock:  # counted before it is sent: a test reads the count once served
                self.sent[path] += len(chunk)
            h.wfile.write(chunk)

    def _status(self, h: BaseHTTPRequestHandler, code: int, text: bytes) -> None:
        h.send_response(code)
        h.send_header("Content-Length", str(len(text)))
        h.end_headers()
        if h.command == "GET":
            h.wfile.write(text)
