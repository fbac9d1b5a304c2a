"""A scriptable OpenAI-compatible chat-completions server for tests (http.server, a thread).

``FakeLLM(script)`` listens on 127.0.0.1 on an ephemeral port. ``script(request, n)``
gets the decoded request (``body``, ``headers``, ``prompt``) and the 1-based count of
requests seen so far, and returns a ``Reply``. The server records every request and the
highest number of requests it held at once, so tests can check retries and concurrency.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """``content`` becomes a chat completion; ``body`` (raw bytes) overrides it."""

    content: str | None = "Fine.\nFinal score: 3"
    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    trickle_s: float = 0.0    # send the body one byte at a time, this far apart


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float

    @property
    def prompt(self) -> str:
        return self.body["messages"][0]["content"]

    @property
    def doc_marker(self) -> str | None:
        """Tests put ``DOC-<n>`` in each document so requests can be traced back to it."""
        match = re.search(r"DOC-\d+", self.prompt)
        return match.group(0) if match else None


Script = Callable[[Seen, int], Reply]


def completion(content: str | None) -> bytes:
    return json.dumps({
        "id": "cmpl-1", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
    }).encode()


class FakeLLM:
    def __init__(self, script: Script | None = None) -> None:
        self.script: Script = script or (lambda seen, n: Reply())
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length", 0))
                seen = Seen(json.loads(self.rfile.read(length)), dict(self.headers),
                            time.monotonic())
                with fake.lock:
                    fake.requests.append(seen)
                    n = len(fake.requests)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                answered = False
                try:
                    if self.path != "/v1/chat/completions":
                        reply = Reply(status=404, body=b'{"error": "not found"}')
                    else:
                        reply = fake.script(seen, n)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    payload = reply.body if reply.body is not None else completion(reply.content)
                    # Counted out before answering: once the client has its answer it may
                    # send the next request before this thread would get to decrement.
                    with fake.lock:
                        fake.in_flight -= 1
                        answered = True
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if reply.trickle_s:
                        for i in range(len(payload)):
                            self.wfile.write(payload[i:i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle_s)
                    else:
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer
                finally:
                    if not answered:
                        with fake.lock:
                            fake.in_flight -= 1

        return Handler
