"""Inputs and out_dir on an object store (S3 on loopback, moto's server mode): the same
bytes as a local out_dir, and a run killed at a commit point resumes to those bytes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROSE, run_outputs, write_config, write_jsonl

BUCKET = "metamix-test"
N_SHARDS = 6
SELECT = {"weights": {"rps_doc_frac_unique_words": 1.0}, "fraction": 0.5,
          "per_domain": True}


def _metamix(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "metamix", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300,
                          start_new_session=True)


def _ok(*args: str) -> str:
    done = _metamix(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _s3_outputs(client: Any, prefix: str) -> dict[str, bytes]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    out = {}
    for key in sorted(keys):
        rel = key.removeprefix(prefix)
        if rel.split("/")[0] in ("logs", "_steps") or rel == "score_summary.json":
            continue
        out[rel] = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return out


@pytest.fixture(scope="module")
def bucket(s3_endpoint: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus uploaded to s3://metamix-test/in/; returns a local work folder."""
    root = tmp_path_factory.mktemp("s3")
    s3_endpoint.create_bucket(Bucket=BUCKET)
    for s in range(N_SHARDS):
        rows: list[object] = [{"id": f"s{s}-{i}", "domain": ["web", "code"][s % 2],
                               "text": f"{PROSE} Line {i}.\n" * (1 + i % 3)}
                              for i in range(120)]
        rows.append(b"not json")
        path = write_jsonl(root / f"shard{s}.jsonl", rows)
        s3_endpoint.upload_file(str(path), BUCKET, f"in/shard{s}.jsonl")
    return root


def _config(root: Path, name: str, out_dir: str) -> Path:
    return write_config(root / f"{name}.yaml", run=name, out_dir=out_dir, workers=2,
                        input={"paths": [f"s3://{BUCKET}/in/*.jsonl"]},
                        score={"batch_size": 40}, select=SELECT)


@pytest.fixture(scope="module")
def local_run(bucket: Path) -> dict[str, bytes]:
    """Read from S3, write to a local out_dir: the reference bytes."""
    cfg = _config(bucket, "ref", str(bucket / "out"))
    _ok("score", "-c", str(cfg))
    _ok("select", "-c", str(cfg))
    return run_outputs(bucket / "out" / "ref")


@pytest.fixture(scope="module")
def s3_run(bucket: Path, s3_endpoint: Any) -> tuple[dict[str, bytes], list[str]]:
    """Read from and write to S3 (commit points counted): outputs and the commit points."""
    cfg = _config(bucket, "clean", f"s3://{BUCKET}/out")
    counter = bucket / "commit_points.txt"
    done = _metamix("score", "-c", str(cfg), env={"METAMIX_FAULT_COUNTER": str(counter)})
    assert done.returncode == 0, done.stderr
    _ok("select", "-c", str(cfg))
    return _s3_outputs(s3_endpoint, "out/clean/"), counter.read_text().splitlines()


def test_outputs_on_s3_are_the_bytes_of_a_local_out_dir(
        local_run: dict[str, bytes], s3_run: tuple[dict[str, bytes], list[str]]) -> None:
    on_s3, _ = s3_run
    assert sorted(on_s3) == sorted(local_run)
    assert {"scored/part-00000.parquet", "_manifests/scored/part-00000.json",
            "quarantine/ingest-part-00000.parquet", "selected/web.parquet",
            "selection_summary.json", "tokens/scored/part-00000.arrow"} <= set(on_s3)
    assert [k for k in on_s3 if on_s3[k] != local_run[k]] == []


def test_run_killed_mid_stage_on_s3_resumes_to_the_same_bytes(
        bucket: Path, s3_endpoint: Any, s3_run: tuple[dict[str, bytes], list[str]]) -> None:
    clean, points = s3_run
    # SIGKILL the command (and its workers) just after the 3rd scored shard's upload
    scored = [i for i, p in enumerate(points)
              if p.startswith("after") and "/out/clean/scored/part-" in p]
    assert len(scored) == N_SHARDS
    cfg = _config(bucket, "killed", f"s3://{BUCKET}/out")
    killed = _metamix("score", "-c", str(cfg), env={
        "METAMIX_FAULT_COUNTER": str(bucket / "kill_points.txt"),
        "METAMIX_FAULT_KILL_AT": str(scored[2])})
    assert killed.returncode == -9
    partial = _s3_outputs(s3_endpoint, "out/killed/")
    assert "selection_summary.json" not in partial
    records = len([k for k in partial if k.startswith("_manifests/scored/")])
    assert 1 <= records < N_SHARDS
    _ok("score", "-c", str(cfg))
    log = json.loads(s3_endpoint.get_object(Bucket=BUCKET, Key="out/killed/logs/score.json")
                     ["Body"].read())
    resumed = {s["stage"]: s["resumed_shards"] for s in log["stages"]}
    # done before the kill; the dedup pass is one record over all shards, redone
    assert resumed == {"ingest": N_SHARDS, "scored": records, "dups": 0}
    _ok("select", "-c", str(cfg))
    after = _s3_outputs(s3_endpoint, "out/killed/")
    assert [k for k in clean if after.get(k) != clean[k]] == [] and after.keys() == clean.keys()
    # a replaced input object (new ETag) is ingested again; the others are not
    s3_endpoint.put_object(Bucket=BUCKET, Key="in/shard3.jsonl",
                           Body=b'{"id": "new", "text": "A new document.", "domain": "web"}\n')
    _ok("score", "-c", str(cfg))
    log = json.loads(s3_endpoint.get_object(Bucket=BUCKET, Key="out/killed/logs/score.json")
                     ["Body"].read())
    assert log["stages"][0]["resumed_shards"] == N_SHARDS - 1


def test_an_empty_object_store_glob_is_one_clear_error(bucket: Path) -> None:
    cfg = write_config(bucket / "empty.yaml", run="empty", out_dir=str(bucket / "out"),
                       input={"paths": [f"s3://{BUCKET}/nothing/*.jsonl"]})
    done = _metamix("score", "-c", str(cfg))
    assert done.returncode != 0
    assert f"nothing matches 's3://{BUCKET}/nothing/*.jsonl'" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_export_reads_a_run_on_s3_and_writes_a_local_folder(
        bucket: Path, local_run: dict[str, bytes],
        s3_run: tuple[dict[str, bytes], list[str]]) -> None:
    """`export` on an s3:// out_dir crashed (pyarrow took no S3Path; the tokenizer was
    opened from the S3 path): it reads through the storage layer and writes to --out, the
    same files as the export of the same run on a local out_dir; without --out it refuses
    in one line, as `report` does."""
    cfg = _config(bucket, "clean", f"s3://{BUCKET}/out")
    refused = _metamix("export", "-c", str(cfg), "--format", "jsonl")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        f"error: export writes a local folder, not s3://{BUCKET}/out/clean/export/jsonl: "
        "pass --out /local/dir (the run on the object store is read in place)")
    ref = _config(bucket, "ref", str(bucket / "out"))
    for fmt, pattern in (("jsonl", "part-*"), ("megatron", "*_document.*")):
        _ok("export", "-c", str(ref), "--format", fmt)
        out = bucket / "from-s3" / fmt
        _ok("export", "-c", str(cfg), "--format", fmt, "--out", str(out))
        mine = {p.name: p.read_bytes() for p in out.glob(pattern)}
        local = {p.name: p.read_bytes()
                 for p in (bucket / "out" / "ref" / "export" / fmt).glob(pattern)}
        assert mine and mine == local
