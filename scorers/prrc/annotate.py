"""`metamix annotate`: rate a stratified sample of documents on the PRRC rubrics with an LLM.

Every answer is appended to an on-disk cache before it counts as done, keyed by what
determines it (text hash, dimension, rubric version and hash, model, excerpt length). A run
killed at any point — even by SIGKILL mid-write — loses at most the requests in flight: a
rerun reloads the cache, ignores a torn last line, and sends only what is missing. Request
errors are not cached (they are transient by nature); parse errors are (the model did
answer, and at temperature 0 it would answer the same).
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from rich.console import Console
from rich.table import Table

from metamix.base.atomic import atomic_path, write_json_atomic
from metamix.base.errors import UserError
from metamix.base.progress import counted_progress
from metamix.scorers.prrc.llm_client import (
    ChatClient,
    EndpointRejected,
    RequestFailed,
    RetryPolicy,
    resolve_endpoint,
)
from metamix.scorers.prrc.rubrics import DIMENSIONS, SCORE_RANGE, Rubric, load_rubric, parse_score

Dimension = Literal["professionalism", "readability", "reasoning", "cleanliness"]
STATUSES = ("ok", "parse_error", "request_error")
REMINDER = ("Your answer did not end with a valid score. Reply with only the line "
            "\"Final score: N\", where N is an integer from 0 to 5.")


class AnnotateConfig(BaseModel):
    """The ``annotate:`` config section. Endpoint fields left empty come from
    ``METAMIX_LLM_BASE_URL`` / ``METAMIX_LLM_MODEL`` / ``METAMIX_LLM_API_KEY``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="e.g. http://localhost:8000/v1")
    model: str | None = Field(default=None, description="model name sent to the endpoint")
    api_key: SecretStr | None = Field(default=None, description="prefer the env variable")
    dimensions: list[Dimension] = Field(default_factory=lambda: list(DIMENSIONS), min_length=1,
                                        description="PRRC dimensions to rate")
    rubric_version: int = Field(default=1, ge=1,
                                description="which rubrics/<dimension>.v<N>.md prompts to use")
    sample: int = Field(default=1000, gt=0, description="documents to rate")
    stratify: Literal["proportional", "equal"] = Field(
        default="proportional",
        description="sample per domain in proportion to its size, or equally")
    seed: int | None = Field(default=None, description="default: the run's seed")
    excerpt_chars: int = Field(default=2000, gt=0,
                               description="characters of each document shown to the model")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0,
                               description="sampling temperature of the model")
    max_tokens: int = Field(default=512, gt=0, description="longest answer accepted from the model")
    max_concurrency: int = Field(default=8, ge=1, le=512, description="requests in flight at once")
    timeout_s: float = Field(default=120.0, gt=0,
                             description="seconds before a request is abandoned and retried")
    max_retries: int = Field(default=4, ge=0, description="per request: errors, 429, 5xx")
    parse_retries: int = Field(default=1, ge=0, description="re-asks after an unparsable answer")
    backoff_base_s: float = Field(default=1.0, gt=0,
                                  description="first retry wait; doubles per retry")
    backoff_max_s: float = Field(default=30.0, gt=0, description="longest retry wait")

    @field_validator("dimensions")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("dimensions repeat")
        return v

    def build_client(self) -> ChatClient:
        key = self.api_key.get_secret_value() if self.api_key else None
        base_url, model, api_key = resolve_endpoint(self.base_url, self.model, key)
        retry = RetryPolicy(self.max_retries, self.backoff_base_s, self.backoff_max_s)
        return ChatClient(base_url, model, api_key, self.timeout_s, self.temperature,
                          self.max_tokens, retry)


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    domain: str


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------- sampling


def allocate(sizes: dict[str, int], n: int, mode: str) -> dict[str, int]:
    """Documents per domain: proportional (largest remainder) or equal (round robin),
    never more than a domain holds; ties break by domain name so results are stable."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    alloc = dict.fromkeys(sizes, 0)
    if mode == "proportional":
        quotas = {d: n * s / total for d, s in sizes.items()}
        alloc = {d: int(q) for d, q in quotas.items()}
        by_remainder = sorted(sizes, key=lambda d: (-(quotas[d] - alloc[d]), d))
        for d in by_remainder[: n - sum(alloc.values())]:
            alloc[d] += 1
        return alloc
    left = n
    while left:
        for d in sorted(sizes):
            if left and alloc[d] < sizes[d]:
                alloc[d] += 1
                left -= 1
    return alloc


def sample_documents(shards: Sequence[Path], n: int, seed: int, mode: str) -> list[Doc]:
    """A seeded, domain-stratified sample; the same inputs always give the same docs, which
    is what lets a rerun find its answers in the cache."""
    columns = [pq.read_table(path, columns=["domain"]).column("domain") for path in shards]
    offsets = np.cumsum([0] + [len(c) for c in columns])
    encoded = pa.chunked_array([c.cast(pa.string()) for c in columns],
                               type=pa.string()).fill_null("").dictionary_encode().combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)  # one small int per document
    names = encoded.dictionary.to_pylist()
    sizes = {names[c]: int(k) for c, k in enumerate(np.bincount(codes, minlength=len(names)))}
    rng = np.random.default_rng(seed)
    chosen: dict[int, list[int]] = {}
    for domain, k in sorted(allocate(sizes, n, mode).items()):
        members = np.flatnonzero(codes == names.index(domain))
        for g in np.sort(rng.choice(members, size=k, replace=False)).tolist():
            s = int(np.searchsorted(offsets, g, side="right")) - 1
            chosen.setdefault(s, []).append(g - int(offsets[s]))
    docs = []
    for s, rows in sorted(chosen.items()):
        table = pq.read_table(shards[s], columns=["id", "text", "domain"]).take(sorted(rows))
        for rec in table.to_pylist():
            docs.append(Doc(str(rec["id"]), rec["text"] or "", rec["domain"] or ""))
    return docs


# ---------------------------------------------------------------- cache


class AnswerCache:
    """Append-only JSONL segments, one per run (``seg-<time>-<pid>.jsonl``).

    A segment is written by one process and never reopened, so a torn line (SIGKILL
    mid-write) can only be the last of its segment and no later record is glued onto it.
    Each line is flushed to the OS as soon as its answer arrives, which survives a killed
    process; the segment is fsynced on close.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        for segment in sorted(directory.glob("seg-*.jsonl")):
            for line in segment.read_bytes().splitlines():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    self.skipped_lines += 1
                    continue
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    self.entries[record["key"]] = record

    @contextmanager
    def writer(self) -> Iterator[IO[bytes]]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
        with open(self.directory / name, "ab") as fh:
            try:
                yield fh
            finally:
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, fh: IO[bytes], record: dict[str, Any]) -> None:
        fh.write(orjson.dumps(record) + b"\n")
        fh.flush()
        self.entries[record["key"]] = record


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Item:
    """One (text, dimension) question; documents with identical text share it."""

    key: str
    text_hash: str
    text: str
    rubric: Rubric


def item_key(thash: str, rubric: Rubric, model: str, excerpt_chars: int) -> str:
    parts = [thash, rubric.dimension, str(rubric.version), rubric.hash, model, str(excerpt_chars)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def ask(client: ChatClient, item: Item, acfg: AnnotateConfig, seed: int,
        stop: threading.Event | None = None) -> dict[str, Any]:
    """Rate one item: transport retries inside the client, then up to ``parse_retries``
    re-asks with a reminder. Never invents a score: no parseable 0..5 → parse_error."""
    messages = [{"role": "user", "content": item.rubric.render(item.text, acfg.excerpt_chars)}]
    rng = random.Random(f"{seed}:{item.key}")  # jitter reproducible regardless of threads
    answers: list[str] = []
    attempts, latency = 0, 0.0
    record: dict[str, Any] = {
        "key": item.key, "text_hash": item.text_hash, "dimension": item.rubric.dimension,
        "rubric_version": item.rubric.version, "rubric_hash": item.rubric.hash,
        "model": client.model, "excerpt_chars": acfg.excerpt_chars, "score": None,
        "error": None,
    }
    for _ in range(acfg.parse_retries + 1):
        if stop is not None and stop.is_set():
            raise _Stopped()
        try:
            completion = client.complete(messages, rng, stop)
        except EndpointRejected:
            if stop is not None:
                stop.set()  # queued items must not hit a rejecting endpoint again
            raise
        except RequestFailed as exc:
            answers.append(exc.raw)
            return record | {"status": "request_error", "error": str(exc),
                             "attempts": attempts + exc.attempts,
                             "raw": _join(answers), "latency_s": latency}
        attempts += completion.attempts
        latency = completion.latency_s
        answers.append(completion.content)
        score = parse_score(completion.content)
        if score is not None:
            return record | {"status": "ok", "score": score, "attempts": attempts,
                             "raw": _join(answers), "latency_s": latency}
        messages = messages + [{"role": "assistant", "content": completion.content},
                               {"role": "user", "content": REMINDER}]
    return record | {"status": "parse_error", "error": "no 'Final score: N' with N in 0..5",
                     "attempts": attempts, "raw": _join(answers), "latency_s": latency}


class _Stopped(Exception):
    """An item skipped because another request was rejected (the run is ending)."""


def _join(answers: list[str]) -> str:
    return "\n\n--- retry ---\n\n".join(answers)


def _send_all(client: ChatClient, todo: list[Item], acfg: AnnotateConfig, seed: int,
              cache: AnswerCache, console: Console, progress: bool) -> dict[str, dict]:
    """Runs ``todo`` on ``max_concurrency`` threads; only this thread writes the cache."""
    fresh: dict[str, dict[str, Any]] = {}
    if not todo:
        return fresh
    stop = threading.Event()  # set on the way out: workers stop retrying
    pool = ThreadPoolExecutor(max_workers=acfg.max_concurrency, thread_name_prefix="annotate")
    pending: set[Future] = set()
    try:
        detail = "requests · ok {task.fields[ok]} · failed {task.fields[bad]}"
        with cache.writer() as fh, counted_progress(console, progress, detail) as bar:
            task = bar.add_task("annotate", total=len(todo), ok=0, bad=0)
            pending = {pool.submit(ask, client, item, acfg, seed, stop) for item in todo}
            n_ok = n_bad = 0
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    if isinstance(future.exception(), _Stopped):
                        continue  # the rejecting item's own future carries the error
                    record = future.result()
                    record["cached"] = False
                    if record["status"] != "request_error":
                        cache.append(fh, record)
                    fresh[record["key"]] = record
                    n_ok += record["status"] == "ok"
                    n_bad += record["status"] != "ok"
                    bar.update(task, advance=1, ok=n_ok, bad=n_bad)
    except EndpointRejected as exc:
        raise UserError(f"annotate: {exc}; answers so far are cached") from None
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
    return fresh


# ---------------------------------------------------------------- outputs


_SCHEMA = pa.schema([
    ("id", pa.string()), ("domain", pa.string()), ("text_hash", pa.string()),
    ("dimension", pa.string()), ("rubric_version", pa.int32()), ("rubric_hash", pa.string()),
    ("model", pa.string()), ("score", pa.int8()), ("status", pa.string()),
    ("attempts", pa.int32()), ("raw", pa.string()), ("error", pa.string()),
    ("latency_s", pa.float64()), ("cached", pa.bool_()),
])


@dataclass
class AnnotateSummary:
    """What a run did; ``counts[dim][status]`` and ``scores[dim][score]`` are per row."""

    rows: int
    requests_sent: int
    cached_items: int
    counts: dict[str, dict[str, int]]
    scores: dict[str, dict[int, int]]
    output: Path

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "requests_sent": self.requests_sent,
                "cached_items": self.cached_items, "counts": self.counts,
                "scores": {d: {str(k): v for k, v in s.items()} for d, s in self.scores.items()},
                "output": str(self.output)}


def _summarize(rows: list[dict], dims: Sequence[str], sent: int, cached: int,
               output: Path) -> AnnotateSummary:
    counts = {d: dict.fromkeys(STATUSES, 0) for d in dims}
    scores = {d: dict.fromkeys(SCORE_RANGE, 0) for d in dims}
    for row in rows:
        counts[row["dimension"]][row["status"]] += 1
        if row["score"] is not None:
            scores[row["dimension"]][row["score"]] += 1
    return AnnotateSummary(len(rows), sent, cached, counts, scores, output)


def print_summary(console: Console, summary: AnnotateSummary) -> None:
    table = Table(title=f"metamix annotate · {summary.rows} ratings · "
                  f"{summary.requests_sent} requests sent · {summary.cached_items} from cache")
    table.add_column("dimension")
    for status in STATUSES:
        table.add_column(status, justify="right")
    for score in SCORE_RANGE:
        table.add_column(str(score), justify="right")
    table.add_column("mean", justify="right")
    for dim, counts in summary.counts.items():
        hist = summary.scores[dim]
        n = sum(hist.values())
        mean = f"{sum(k * v for k, v in hist.items()) / n:.2f}" if n else "-"
        table.add_row(dim, *(str(counts[s]) for s in STATUSES),
                      *(str(hist[k]) for k in SCORE_RANGE), mean)
    console.print(table)


# ---------------------------------------------------------------- entry points


def annotate_documents(docs: Sequence[Doc], acfg: AnnotateConfig, out_dir: Path,
                       console: Console, *, seed: int = 0, progress: bool = True,
                       client: ChatClient | None = None) -> AnnotateSummary:
    """Rate ``docs`` on every configured dimension; writes ``out_dir/annotations.parquet``
    and ``out_dir/summary.json`` atomically, answers in ``out_dir/cache``."""
    client = client or acfg.build_client()
    rubrics = [load_rubric(d, acfg.rubric_version) for d in acfg.dimensions]
    cache = AnswerCache(out_dir / "cache")
    if cache.skipped_lines:
        console.print(f"annotate: ignored {cache.skipped_lines} torn cache line(s)")
    items: dict[str, Item] = {}
    plan: list[tuple[Doc, str]] = []
    for rubric in rubrics:
        for doc in docs:
            thash = text_hash(doc.text)
            key = item_key(thash, rubric, client.model, acfg.excerpt_chars)
            items.setdefault(key, Item(key, thash, doc.text, rubric))
            plan.append((doc, key))
    todo = [item for key, item in items.items() if key not in cache.entries]
    n_cached = len(items) - len(todo)
    fresh = _send_all(client, todo, acfg, seed, cache, console, progress)
    rows = []
    for doc, key in plan:
        record = fresh.get(key) or (cache.entries[key] | {"cached": True})
        rows.append({name: record.get(name) for name in _SCHEMA.names} | {"id": doc.id,
                                                                         "domain": doc.domain})
    output = out_dir / "annotations.parquet"
    with atomic_path(output) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=_SCHEMA), tmp)
    sent = sum(r["attempts"] for r in fresh.values())
    summary = _summarize(rows, acfg.dimensions, sent, n_cached, output)
    write_json_atomic(out_dir / "summary.json", summary.to_json() | {
        "config": acfg.model_dump(mode="json", exclude={"api_key"}), "model": client.model})
    print_summary(console, summary)
    if rows and not any(c["ok"] for c in summary.counts.values()):
        failed = {status: sum(c[status] for c in summary.counts.values())
                  for status in STATUSES if status != "ok"}
        raise UserError(f"annotate: no rating succeeded ({len(rows)} items: "
                        + ", ".join(f"{k} {v}" for k, v in failed.items()) + f"; "
                        f"{sent} requests sent); see {output} for the errors")
    return summary


def run_annotate(cfg: Any, acfg: AnnotateConfig, console: Console) -> AnnotateSummary:
    """`metamix annotate`: sample from ``out/<run>/scored`` and rate the sample.

    ``cfg`` is the ``RunConfig`` (uses ``run_dir``, ``seed``, ``progress``).
    """
    shards = sorted((cfg.run_dir / "scored").glob("part-*.parquet"))
    if not shards:
        raise UserError(f"no scored shards in {cfg.run_dir / 'scored'}: run `metamix score` "
                        "first")
    client = acfg.build_client()  # fail on a missing endpoint before reading any data
    seed = cfg.seed if acfg.seed is None else acfg.seed
    docs = sample_documents(shards, acfg.sample, seed, acfg.stratify)
    return annotate_documents(docs, acfg, cfg.run_dir / "annotate", console, seed=seed,
                              progress=cfg.progress, client=client)
