"""A small client for OpenAI-compatible chat-completions endpoints (vLLM, llama.cpp, OpenAI).

Standard library only (``http.client``): one POST per call, safe to share between threads
(no state is mutated after construction). ``timeout_s`` bounds the *whole* request: a watchdog
shuts the socket down at the deadline, so a server that trickles bytes cannot hold a request
open (a per-read timeout would wait forever). Transient failures — connection errors, timeouts,
429 and 5xx, unreadable bodies — are retried with seeded exponential backoff and jitter,
honouring ``Retry-After``; the caller bounds concurrency with its own thread pool.

The API key is sent only as ``Authorization: Bearer``; it is never part of a repr, an
exception message or anything this module returns.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from metamix.base.errors import UserError

ENV_BASE_URL = "METAMIX_LLM_BASE_URL"
ENV_API_KEY = "METAMIX_LLM_API_KEY"
ENV_MODEL = "METAMIX_LLM_MODEL"

Message = dict[str, str]


class RequestFailed(Exception):
    """No usable answer after all retries; ``raw`` keeps what the server last sent."""

    def __init__(self, message: str, attempts: int, raw: str = "") -> None:
        super().__init__(message)
        self.attempts = attempts
        self.raw = raw


class EndpointRejected(RequestFailed):
    """401/403/404: every further request would fail the same way, so the run stops."""


class _Retryable(Exception):
    def __init__(self, message: str, raw: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts; delay ``base * 2**k`` capped, then jittered to
    [delay/2, delay] so that many workers that failed together do not retry together."""

    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0

    def delay(self, retry_index: int, rng: random.Random, retry_after: float | None) -> float:
        capped = min(self.backoff_max_s, self.backoff_base_s * 2**retry_index)
        jittered = capped / 2 + rng.random() * capped / 2
        if retry_after is not None:
            return max(jittered, min(retry_after, self.retry_after_max_s))
        return jittered


@dataclass(frozen=True)
class Completion:
    """One chat answer: its text (possibly empty), HTTP attempts used, seconds of the last."""

    content: str
    attempts: int
    latency_s: float


@dataclass(frozen=True)
class ChatClient:
    """POSTs ``{base_url}/chat/completions``; ``complete`` is the only network call."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 60.0
    temperature: float = 0.0
    max_tokens: int = 512
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def complete(self, messages: list[Message], rng: random.Random | None = None,
                 stop: threading.Event | None = None) -> Completion:
        """The answer to ``messages``; raises RequestFailed once retries are exhausted, or
        at the next backoff once ``stop`` is set (so Ctrl-C does not wait out every retry)."""
        rng = rng or random.Random(0)
        body = json.dumps({
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }).encode("utf-8")
        attempts = 0
        while True:
            if stop is not None and stop.is_set():
                raise RequestFailed("cancelled", attempts)
            attempts += 1
            started = time.monotonic()
            try:
                content = self._post_once(body)
                return Completion(content, attempts, time.monotonic() - started)
            except _Retryable as exc:
                if attempts > self.retry.max_retries:
                    raise RequestFailed(f"{exc} (after {attempts} attempts)", attempts,
                                        exc.raw) from None
                pause = self.retry.delay(attempts - 1, rng, exc.retry_after)
                if stop is not None and stop.wait(pause):
                    raise RequestFailed("cancelled", attempts, exc.raw) from None
                if stop is None:
                    time.sleep(pause)
            except RequestFailed as exc:
                exc.attempts = attempts
                raise

    def _post_once(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = urllib.parse.urlsplit(self.url)
        connection = (http.client.HTTPSConnection if url.scheme == "https"
                      else http.client.HTTPConnection)
        conn = connection(url.hostname or "", url.port, timeout=self.timeout_s)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout_s, expire)
        timer.daemon = True
        timer.start()
        timed_out = _Retryable(f"timed out after {self.timeout_s:g}s")
        try:
            path = url.path + (f"?{url.query}" if url.query else "")
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read().decode("utf-8", errors="replace")
            status, response_headers = response.status, response.headers
        except TimeoutError:
            raise timed_out from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            if expired.is_set():
                raise timed_out from None
            raise _Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            conn.close()
        if expired.is_set():    # the shutdown may end a read early without an error
            raise timed_out
        if status >= 400:
            raise _classify_http_status(status, response_headers.get("Retry-After"),
                                        raw[:2000])
        return _extract_content(raw)


def _extract_content(raw: str) -> str:
    """``choices[0].message.content``; a body without it is a server fault, retried."""
    try:
        payload: Any = json.loads(raw)
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _Retryable("response is not a chat completion (bad JSON or no choices)",
                         raw=raw[:2000]) from None
    return content if isinstance(content, str) else ""


def _classify_http_status(code: int, retry_after: str | None, raw: str) -> Exception:
    if code == 429 or code >= 500:
        return _Retryable(f"HTTP {code}", raw=raw, retry_after=parse_retry_after(retry_after))
    if code in (401, 403, 404):
        hint = "check the API key" if code in (401, 403) else "check base_url and model"
        return EndpointRejected(f"HTTP {code} from the endpoint ({hint})", 1, raw)
    return RequestFailed(f"HTTP {code}", 1, raw)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def resolve_endpoint(
    base_url: str | None, model: str | None, api_key: str | None
) -> tuple[str, str, str | None]:
    """Config values win; the ``METAMIX_LLM_*`` environment variables fill the gaps."""
    base_url = base_url or os.environ.get(ENV_BASE_URL) or None
    model = model or os.environ.get(ENV_MODEL) or None
    api_key = api_key or os.environ.get(ENV_API_KEY) or None
    missing = [name for name, value in ((ENV_BASE_URL, base_url), (ENV_MODEL, model))
               if not value]
    if missing:
        raise UserError(f"annotate: no LLM endpoint: set annotate.base_url/model or "
                        f"{' and '.join(missing)}")
    assert base_url is not None and model is not None
    return base_url, model, api_key
