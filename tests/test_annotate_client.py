"""The chat-completions client against a scripted local server: retries, backoff, errors."""

from __future__ import annotations

import email.utils
import socket
import threading
import time

import pytest

from metamix.base.errors import UserError
from metamix.scorers.prrc.llm_client import (
    ChatClient,
    EndpointRejected,
    RequestFailed,
    RetryPolicy,
    parse_retry_after,
    resolve_endpoint,
)
from tests.fake_llm_server import FakeLLM, Reply

FAST = RetryPolicy(max_retries=3, backoff_base_s=0.05, backoff_max_s=0.2)
MESSAGES = [{"role": "user", "content": "Rate DOC-1"}]


def client_for(fake: FakeLLM, **kw) -> ChatClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("timeout_s", 2.0)
    return ChatClient(fake.base_url, "test-model", **kw)


def test_posts_a_chat_completion_with_bearer_key() -> None:
    with FakeLLM() as fake:
        answer = client_for(fake, api_key="sk-secret-123", max_tokens=64).complete(MESSAGES)
    assert answer.content == "Fine.\nFinal score: 3" and answer.attempts == 1
    (seen,) = fake.requests
    assert seen.headers["Authorization"] == "Bearer sk-secret-123"
    assert seen.body == {"model": "test-model", "messages": MESSAGES, "temperature": 0.0,
                         "max_tokens": 64}


def test_no_key_no_authorization_header() -> None:
    with FakeLLM() as fake:
        client_for(fake).complete(MESSAGES)
    assert "Authorization" not in fake.requests[0].headers


def test_key_not_in_repr() -> None:
    assert "sk-secret" not in repr(ChatClient("http://x/v1", "m", api_key="sk-secret"))


def test_500s_are_retried_with_growing_backoff() -> None:
    script = lambda seen, n: Reply(status=500, body=b"oops") if n <= 2 else Reply()  # noqa: E731
    with FakeLLM(script) as fake:
        answer = client_for(fake).complete(MESSAGES)
    assert answer.attempts == 3
    t = [s.at for s in fake.requests]
    first_gap, second_gap = t[1] - t[0], t[2] - t[1]
    assert 0.025 <= first_gap < 1.0  # base 0.05, jittered into [0.025, 0.05]
    assert 0.05 <= second_gap < 1.0  # doubled: [0.05, 0.1]


def test_429_respects_retry_after() -> None:
    def script(seen, n):
        return Reply(status=429, body=b"slow down", headers={"Retry-After": "1"}) if n == 1 \
            else Reply()

    with FakeLLM(script) as fake:
        assert client_for(fake).complete(MESSAGES).attempts == 2
    assert fake.requests[1].at - fake.requests[0].at >= 0.95


def test_timeout_is_retried() -> None:
    script = lambda seen, n: Reply(delay_s=1.5) if n == 1 else Reply()  # noqa: E731
    with FakeLLM(script) as fake:
        started = time.monotonic()
        answer = client_for(fake, timeout_s=0.3).complete(MESSAGES)
    assert answer.attempts == 2 and time.monotonic() - started < 1.4


def test_a_trickling_server_is_cut_at_the_whole_request_deadline() -> None:
    # ~200 bytes, one every 0.1 s: a per-read timeout of 0.6 s would wait ~20 s
    script = lambda seen, n: Reply(trickle_s=0.1) if n == 1 else Reply()  # noqa: E731
    with FakeLLM(script) as fake:
        started = time.monotonic()
        answer = client_for(fake, timeout_s=0.6).complete(MESSAGES)
    assert answer.attempts == 2 and time.monotonic() - started < 3.0


def test_gives_up_after_max_retries_keeping_the_raw_body() -> None:
    script = lambda seen, n: Reply(body=b"<html>not json")  # noqa: E731
    with FakeLLM(script) as fake, pytest.raises(RequestFailed) as info:
        client_for(fake).complete(MESSAGES)
    assert info.value.attempts == 4 and len(fake.requests) == 4
    assert info.value.raw == "<html>not json"


def test_400_is_not_retried_and_401_rejects_the_endpoint() -> None:
    with FakeLLM(lambda seen, n: Reply(status=400, body=b"bad")) as fake, \
            pytest.raises(RequestFailed) as info:
        client_for(fake).complete(MESSAGES)
    assert info.value.attempts == 1 and not isinstance(info.value, EndpointRejected)
    with FakeLLM(lambda seen, n: Reply(status=401, body=b"no")) as fake, \
            pytest.raises(EndpointRejected, match="API key"):
        client_for(fake, api_key="sk-wrong").complete(MESSAGES)
    assert len(fake.requests) == 1


def test_connection_refused_is_retried_then_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the client connects
    client = ChatClient(f"http://127.0.0.1:{port}/v1", "m", retry=FAST, timeout_s=1)
    with pytest.raises(RequestFailed, match="connection failed") as info:
        client.complete(MESSAGES)
    assert info.value.attempts == 4


def test_retry_after_formats() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < parse_retry_after(future) <= 31
    assert RetryPolicy(retry_after_max_s=5).delay(0, __import__("random").Random(0), 999) == 5


def test_endpoint_from_env_and_config(monkeypatch) -> None:
    monkeypatch.setenv("METAMIX_LLM_BASE_URL", "http://env/v1")
    monkeypatch.setenv("METAMIX_LLM_MODEL", "env-model")
    monkeypatch.setenv("METAMIX_LLM_API_KEY", "sk-env")
    assert resolve_endpoint(None, None, None) == ("http://env/v1", "env-model", "sk-env")
    assert resolve_endpoint("http://cfg/v1", "m", "k") == ("http://cfg/v1", "m", "k")
    monkeypatch.delenv("METAMIX_LLM_MODEL")
    with pytest.raises(UserError, match="METAMIX_LLM_MODEL"):
        resolve_endpoint(None, None, None)


def test_stop_event_cuts_backoff_short() -> None:
    stop = threading.Event()
    slow = RetryPolicy(max_retries=5, backoff_base_s=5.0, backoff_max_s=5.0)
    with FakeLLM(lambda seen, n: Reply(status=503, body=b"busy")) as fake:
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        with pytest.raises(RequestFailed, match="cancelled"):
            client_for(fake, retry=slow).complete(MESSAGES, stop=stop)
    assert time.monotonic() - started < 2 and len(fake.requests) == 1
