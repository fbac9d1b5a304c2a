"""Shared fixtures: tiny corpora written by hand, and configs pointing at them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Rows may be dicts (serialized) or raw bytes/str lines (written as they are)."""
    with open(path, "wb") as fh:
        for row in rows:
            if isinstance(row, bytes):
                fh.write(row.rstrip(b"\n") + b"\n")
            elif isinstance(row, str):
                fh.write(row.encode("utf-8") + b"\n")
            else:
                fh.write(json.dumps(row).encode("utf-8") + b"\n")
    return path


def write_config(path: Path, **sections: Any) -> Path:
    data = {"run": "t", "out_dir": str(path.parent / "out"), "workers": 1, "progress": False,
            "tokenizer": {"vocab_size": 300, "sample_docs": 200}}
    data.update(sections)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_outputs(run_dir: Path, skip_dirs: tuple[str, ...] = ("logs", "_steps")
                ) -> dict[str, bytes]:
    """Every file of a run that a rerun, a resume or another executor must reproduce byte
    for byte: all but timings (``logs/``, ``score_summary.json``), step stamps and the lock."""
    return {p.relative_to(run_dir).as_posix(): p.read_bytes()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name not in ("score_summary.json", ".lock")
            and p.relative_to(run_dir).parts[0] not in skip_dirs}


PROSE = (
    "The committee met on Tuesday to review the annual budget. Members discussed the "
    "costs of maintaining the old library building, which was built in 1903. After a long "
    "debate, they agreed to fund repairs to the roof and the heating system. The chair "
    "thanked everyone for their patience and closed the meeting at nine o'clock."
)


@pytest.fixture
def prose() -> str:
    return PROSE


@pytest.fixture
def sample_slice(tmp_path: Path) -> Path:
    """A few hundred documents of the bundled corpus, spread over every domain."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = sorted((SAMPLE / "train").glob("*.parquet"))
    if not shards:
        pytest.skip("bundled corpus data/sample is missing")
    out = tmp_path / "slice"
    out.mkdir()
    by_domain: dict[str, Path] = {}
    for shard in shards:
        by_domain.setdefault(shard.name.rsplit("-", 1)[0], shard)
    for domain, shard in sorted(by_domain.items()):
        table = pq.read_table(shard).slice(0, 60)
        pq.write_table(pa.Table.from_batches(table.to_batches()), out / f"{domain}.parquet")
    return out


S3_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
               "AWS_ENDPOINT_URL")


@pytest.fixture(scope="session")
def s3_endpoint() -> Any:
    """An S3 server on loopback (moto's server mode, in a thread of this process), with the
    standard AWS_* variables pointing at it for this process and the commands it starts;
    yields a boto3 client. moto and s3fs come with the dev extra: a missing one is an error,
    not a silently skipped test."""
    import os
    import socket

    import moto.server as server_mod
    import s3fs  # noqa: F401  (the backend every s3:// path uses)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in S3_ENV_KEYS}
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    import boto3

    try:
        yield boto3.client("s3")
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
