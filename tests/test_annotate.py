"""`annotate` end to end against a scripted local server: scores, failures, cache, resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from rich.console import Console

from metamix.base.errors import UserError
from metamix.scorers.prrc.annotate import (
    AnnotateConfig,
    AnswerCache,
    Doc,
    allocate,
    annotate_documents,
    run_annotate,
    sample_documents,
)
from tests.fake_llm_server import FakeLLM, Reply, Seen

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-test-SECRET-7f3a"


def docs(n: int, domain: str = "web") -> list[Doc]:
    return [Doc(f"id-{i}", f"Document DOC-{i} about {{braces}} and topic {i}.", domain)
            for i in range(n)]


def acfg(fake: FakeLLM, **kw) -> AnnotateConfig:
    base = {"base_url": fake.base_url, "model": "fake-model", "dimensions": ["reasoning"],
            "max_concurrency": 4, "timeout_s": 2.0, "max_retries": 2, "parse_retries": 1,
            "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    return AnnotateConfig.model_validate(base | kw)


def run(documents: list[Doc], cfg: AnnotateConfig, out: Path) -> tuple:
    console = Console(file=io.StringIO(), width=160)
    summary = annotate_documents(documents, cfg, out, console, progress=False)
    rows = pq.read_table(out / "annotations.parquet").to_pylist()
    return summary, rows, console.file.getvalue()


def by_marker(script: dict[str, Reply | list[Reply]], default: Reply | None = None):
    """Reply per DOC marker; a list is consumed one reply per request for that document."""
    lock = threading.Lock()

    def reply(seen: Seen, n: int) -> Reply:
        with lock:
            value = script.get(seen.doc_marker, default or Reply())
            return value.pop(0) if isinstance(value, list) else value

    return reply


def score_by_doc(seen: Seen, n: int) -> Reply:
    i = int(seen.doc_marker.split("-")[1])
    return Reply(f"Some reasoning here.\n**Final score:** {i % 6}")


def test_scores_are_parsed_and_written(tmp_path: Path) -> None:
    with FakeLLM(score_by_doc) as fake:
        summary, rows, text = run(docs(8), acfg(fake, dimensions=["reasoning", "cleanliness"]),
                                  tmp_path)
    assert len(fake.requests) == 16 and len(rows) == 16
    assert {(r["id"], r["dimension"], r["score"]) for r in rows} == {
        (f"id-{i}", d, i % 6) for i in range(8) for d in ("reasoning", "cleanliness")}
    row = rows[0]
    assert row["status"] == "ok" and row["attempts"] == 1 and row["model"] == "fake-model"
    assert row["rubric_version"] == 2 and len(row["text_hash"]) == 32 and row["latency_s"] > 0
    assert "Final score" in row["raw"] and row["error"] is None and row["cached"] is False
    assert summary.counts["reasoning"] == {"ok": 8, "parse_error": 0, "request_error": 0}
    assert summary.scores["cleanliness"] == {0: 2, 1: 2, 2: 1, 3: 1, 4: 1, 5: 1}
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["requests_sent"] == 16 and saved["config"]["sample"] == 1000
    assert "reasoning" in text and "16 ratings" in text


def test_malformed_answers_are_retried_then_recorded_as_parse_errors(tmp_path: Path) -> None:
    script = by_marker({
        "DOC-0": Reply("I think this is quite good."),      # no score
        "DOC-1": Reply("Final score: 7"),                   # out of range
        "DOC-2": Reply(""),                                 # empty content
        "DOC-3": Reply(None),                               # null content
        "DOC-4": [Reply("hmm"), Reply("Final score: 2")],   # fixed by the reminder
        "DOC-5": Reply(body=b"{not json"),                  # invalid body: a request error
    })
    with FakeLLM(script) as fake:
        _, rows, _ = run(docs(6), acfg(fake), tmp_path)
    got = {r["id"]: r for r in rows}
    for i, raw in [(0, "I think this is quite good."), (1, "Final score: 7"), (2, ""), (3, "")]:
        row = got[f"id-{i}"]
        assert row["status"] == "parse_error" and row["score"] is None
        assert row["attempts"] == 2 and row["raw"].startswith(raw)
    assert "retry" in got["id-0"]["raw"]  # both answers kept
    assert got["id-4"]["status"] == "ok" and got["id-4"]["score"] == 2
    assert got["id-4"]["attempts"] == 2
    assert got["id-5"]["status"] == "request_error" and got["id-5"]["score"] is None
    assert got["id-5"]["attempts"] == 3 and got["id-5"]["raw"] == "{not json"
    reminders = [s for s in fake.requests if len(s.body["messages"]) == 3]
    assert len(reminders) == 5  # DOC-0..4 re-asked once, with the first answer in context
    assert reminders[0].body["messages"][1]["role"] == "assistant"


def test_server_errors_and_timeouts_are_retried_to_success(tmp_path: Path) -> None:
    script = by_marker({
        "DOC-0": [Reply(status=500, body=b"x"), Reply(status=503, body=b"x"), Reply()],
        "DOC-1": [Reply(status=429, body=b"x", headers={"Retry-After": "0.2"}), Reply()],
        "DOC-2": [Reply(delay_s=1.0), Reply()],
    })
    with FakeLLM(script) as fake:
        _, rows, _ = run(docs(3), acfg(fake, timeout_s=0.3), tmp_path)
    assert [(r["status"], r["attempts"], r["score"]) for r in rows] == [
        ("ok", 3, 3), ("ok", 2, 3), ("ok", 2, 3)]


def test_a_run_where_no_rating_succeeds_fails_with_the_counts(tmp_path: Path) -> None:
    from metamix.base.errors import UserError

    with FakeLLM(lambda seen, n: Reply(status=500, body=b"down")) as fake, \
            pytest.raises(UserError, match=r"no rating succeeded \(3 items: parse_error 0, "
                                           r"request_error 3; 9 requests sent\)"):
        run(docs(3), acfg(fake), tmp_path)
    # the answers are still written, so the errors can be read
    rows = pq.read_table(tmp_path / "annotations.parquet").to_pylist()
    assert [r["status"] for r in rows] == ["request_error"] * 3


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    with FakeLLM(lambda seen, n: Reply(delay_s=0.05)) as fake:
        run(docs(24), acfg(fake, max_concurrency=3), tmp_path)
    assert len(fake.requests) == 24 and fake.max_in_flight == 3


def test_second_run_is_served_from_the_cache(tmp_path: Path) -> None:
    script = by_marker({"DOC-1": Reply(status=500, body=b"down")}, default=Reply())
    with FakeLLM(script) as fake:
        first, rows1, _ = run(docs(5), acfg(fake), tmp_path)
        assert first.counts["reasoning"]["request_error"] == 1
        fake.requests.clear()
        second, rows2, _ = run(docs(5), acfg(fake), tmp_path)
        assert [s.doc_marker for s in fake.requests] == ["DOC-1"] * 3  # only the failure
        fake.script = lambda seen, n: Reply()
        fake.requests.clear()
        run(docs(5), acfg(fake), tmp_path)
        assert [s.doc_marker for s in fake.requests] == ["DOC-1"]
        fake.requests.clear()
        third, rows3, _ = run(docs(5), acfg(fake), tmp_path)
    assert fake.requests == [] and third.requests_sent == 0 and third.cached_items == 5
    assert all(r["cached"] and r["status"] == "ok" for r in rows3)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "cached"} for r in rows]  # noqa
    assert strip(rows1)[0] == strip(rows3)[0]


def test_cache_key_includes_model_and_duplicates_are_asked_once(tmp_path: Path) -> None:
    same = [Doc("a", "Same text DOC-1", "x"), Doc("b", "Same text DOC-1", "y")]
    with FakeLLM() as fake:
        _, rows, _ = run(same, acfg(fake), tmp_path)
        assert len(fake.requests) == 1 and [r["id"] for r in rows] == ["a", "b"]
        run(same, acfg(fake, model="other-model"), tmp_path)
        assert len(fake.requests) == 2


def test_torn_cache_line_is_ignored(tmp_path: Path) -> None:
    with FakeLLM() as fake:
        run(docs(3), acfg(fake), tmp_path)
        (segment,) = (tmp_path / "cache").glob("seg-*.jsonl")
        lines = segment.read_bytes().splitlines(keepends=True)
        segment.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
        assert AnswerCache(tmp_path / "cache").skipped_lines == 1
        fake.requests.clear()
        _, rows, text = run(docs(3), acfg(fake), tmp_path)
    assert len(fake.requests) == 1 and len(rows) == 3 and "torn" in text


CHILD = """
import json, sys
from pathlib import Path
from rich.console import Console
from metamix.scorers.prrc.annotate import AnnotateConfig, Doc, annotate_documents
spec = json.loads(Path(sys.argv[1]).read_text())
annotate_documents([Doc(**d) for d in spec["docs"]], AnnotateConfig(**spec["acfg"]),
                   Path(spec["out"]), Console(), progress=False)
"""


def test_sigkilled_run_resumes_without_resending_cached_items(tmp_path: Path) -> None:
    release = threading.Event()

    def script(seen: Seen, n: int) -> Reply:
        if n > 5:
            release.wait(20)  # hold later requests in flight until the child is dead
        return Reply()

    documents = docs(12)
    cache_dir = tmp_path / "out" / "cache"
    with FakeLLM(script) as fake:
        cfg = acfg(fake, max_concurrency=2)
        spec = {"docs": [d.__dict__ for d in documents], "out": str(tmp_path / "out"),
                "acfg": cfg.model_dump(mode="json")}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "spec.json")],
                                 cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + 20
            while (len(AnswerCache(cache_dir).entries) < 5 or len(fake.requests) < 7) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(fake.requests) == 7  # 5 answered, 2 held in flight
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            release.set()
        assert not (tmp_path / "out" / "annotations.parquet").exists()
        cached = {k for k in AnswerCache(cache_dir).entries}
        assert len(cached) == 5
        answered = {s.doc_marker for s in fake.requests[:5]}
        fake.requests.clear()
        _, rows, _ = run(documents, cfg, tmp_path / "out")
    resent = [s.doc_marker for s in fake.requests]
    assert len(resent) == 7 and len(set(resent)) == 7 and not set(resent) & answered
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows)
    assert sum(r["cached"] for r in rows) == 5


def test_api_key_is_sent_as_bearer_and_never_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("METAMIX_LLM_API_KEY", KEY)
    with FakeLLM(lambda seen, n: Reply(status=500) if n == 1 else Reply()) as fake:
        cfg = acfg(fake)
        _, _, text = run(docs(3), cfg, tmp_path)
        cfg_with_key = acfg(fake, api_key="sk-in-config-9c1e")
        assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
        monkeypatch.delenv("METAMIX_LLM_API_KEY")
        fake.requests.clear()
        _, _, text2 = run(docs(4), cfg_with_key, tmp_path)
        assert fake.requests[0].headers["Authorization"] == "Bearer sk-in-config-9c1e"
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for secret in (KEY, "sk-in-config-9c1e"):
        assert secret.encode() not in written and secret not in text + text2
        assert secret not in repr(cfg_with_key) + repr(cfg_with_key.build_client())
        assert secret not in cfg_with_key.model_dump_json()


def test_rejected_endpoint_stops_the_run(tmp_path: Path) -> None:
    reject = FakeLLM(lambda seen, n: Reply(status=401, body=b"bad key"))
    with reject as fake, pytest.raises(UserError, match="HTTP 401"):
        run(docs(20), acfg(fake, max_concurrency=1), tmp_path)
    assert len(fake.requests) == 1  # queued items never reach a rejecting endpoint


def test_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="extra"):
        AnnotateConfig.model_validate({"modle": "x"})
    with pytest.raises(ValidationError, match="repeat"):
        AnnotateConfig(dimensions=["reasoning", "reasoning"])
    with pytest.raises(ValidationError):
        AnnotateConfig(dimensions=["vibes"])
    assert AnnotateConfig().dimensions == [
        "professionalism", "readability", "reasoning", "cleanliness"]


def test_allocation_is_stratified() -> None:
    sizes = {"books": 70, "code": 20, "qa": 10}
    assert allocate(sizes, 10, "proportional") == {"books": 7, "code": 2, "qa": 1}
    assert allocate(sizes, 31, "equal") == {"books": 11, "code": 10, "qa": 10}
    assert allocate(sizes, 500, "equal") == sizes
    assert sum(allocate({"a": 1, "b": 1, "c": 1}, 2, "proportional").values()) == 2


def write_scored(run_dir: Path) -> None:
    (run_dir / "scored").mkdir(parents=True)
    for part, domain in enumerate(["books", "code", "qa"]):
        n = [30, 15, 5][part]
        ids = [f"{domain}-{i}" for i in range(n)]
        table = pa.table({"id": ids, "text": [f"Text of DOC-{part * 100 + i}." for i in range(n)],
                          "domain": [domain] * n, "source": ["s"] * n, "n_tokens": [5] * n})
        pq.write_table(table, run_dir / "scored" / f"part-{part:05d}.parquet")


def test_run_annotate_samples_scored_shards(tmp_path: Path) -> None:
    run_dir = tmp_path / "out" / "t"
    cfg = SimpleNamespace(run_dir=run_dir, seed=3, progress=False)
    with pytest.raises(UserError, match="metamix score"):
        run_annotate(cfg, AnnotateConfig(base_url="http://x/v1", model="m"), Console())
    write_scored(run_dir)
    paths = sorted((run_dir / "scored").glob("*.parquet"))
    sample = sample_documents(paths, 10, seed=3, mode="proportional")
    assert sample == sample_documents(paths, 10, seed=3, mode="proportional")
    assert sample != sample_documents(paths, 10, seed=4, mode="proportional")
    assert [d.domain for d in sample].count("books") == 6
    with FakeLLM() as fake:
        summary = run_annotate(cfg, acfg(fake, sample=10), Console(file=io.StringIO()))
    rows = pq.read_table(run_dir / "annotate" / "annotations.parquet").to_pylist()
    assert summary.rows == 10 and {r["id"] for r in rows} == {d.id for d in sample}
