"""Inputs and out_dir on an object store (S3 on loopback, moto's server mode): the same
bytes as a local out_dir, and a run killed at a commit point resumes to those bytes."""

from __future__ import annotations

import contextlib
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


class _Proxy:
    """A TCP forwarder in front of the S3 server that the test can cut: the object store
    going away mid-command (connections reset, then refused), without losing its objects."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: Any, dst: Any) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        import socket

        self._listener.close()
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


def _cut_at(cfg: Path, command: str, marker: str, counter: Path) -> tuple[int, str]:
    """Start ``command`` through a proxy and cut the proxy at the first commit point whose
    line contains ``marker``; return its exit code and stderr."""
    import os
    import time
    from urllib.parse import urlparse

    proxy = _Proxy(urlparse(os.environ["AWS_ENDPOINT_URL"]).port or 80)
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
           "METAMIX_FAULT_COUNTER": str(counter), "AWS_MAX_ATTEMPTS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "metamix", command, "-c", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if counter.exists() and marker in counter.read_text():
            break
        time.sleep(0.005)
    proxy.cut()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _one_line_outage(done: tuple[int, str], prefix: str) -> None:
    returncode, err = done
    assert returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: s3://{BUCKET}{prefix}"), err
    assert "the object store stopped answering (could not connect to http://127.0.0.1:" \
        in lines[0] and "rerunning the same command once it is back resumes" in lines[0]


def test_object_store_going_away_mid_run_is_one_line_and_a_rerun_resumes(
        bucket: Path, s3_endpoint: Any, s3_run: tuple[dict[str, bytes], list[str]]) -> None:
    """The server going away mid-`score` (in a worker) and mid-`select` (an upload) printed
    botocore's EndpointConnectionError traceback: one line naming the s3:// object, exit 2,
    and the rerun (store back) resumes to the bytes of a clean run, as the line says."""
    clean, _ = s3_run
    # the inputs of the clean run (the resume test above replaces one object)
    s3_endpoint.upload_file(str(bucket / "shard3.jsonl"), BUCKET, "in/shard3.jsonl")
    cfg = _config(bucket, "outage", f"s3://{BUCKET}/out")
    scored = _cut_at(cfg, "score", "after\ts3://metamix-test/out/outage/_manifests/scored/part-",
                     bucket / "outage_score.txt")
    _one_line_outage(scored, "")
    partial = _s3_outputs(s3_endpoint, "out/outage/")
    assert 1 <= len([k for k in partial if k.startswith("_manifests/scored/")]) < N_SHARDS
    _ok("score", "-c", str(cfg))
    selected = _cut_at(cfg, "select", "after\ts3://", bucket / "outage_select.txt")
    _one_line_outage(selected, "")
    _ok("select", "-c", str(cfg))
    after = _s3_outputs(s3_endpoint, "out/outage/")
    assert after.keys() == clean.keys()
    assert [k for k in clean if after[k] != clean[k]] == []


def test_duckdb_reading_an_unreachable_store_is_one_line(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """DuckDB reads s3:// through the fsspec filesystem and flattens its errors into a
    `_duckdb.Error` whose text holds the traceback: recognised, named, one line."""
    import socket

    import duckdb
    import s3fs

    from metamix.base.storage import unreachable_store_message

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    fs = s3fs.S3FileSystem(key="k", secret="s", skip_instance_cache=True,
                           endpoint_url=f"http://127.0.0.1:{port}",
                           config_kwargs={"retries": {"max_attempts": 1}})
    con = duckdb.connect()
    con.register_filesystem(fs)
    with pytest.raises(duckdb.Error) as caught:
        con.execute("select * from read_parquet('s3://bkt/run/scored/part-00000.parquet')")
    message = unreachable_store_message(caught.value)
    assert message is not None and message.startswith(
        "s3://bkt/run/scored/part-00000.parquet: the object store stopped answering "
        f"(could not connect to http://127.0.0.1:{port})")
    assert unreachable_store_message(ValueError("EndpointConnectionError")) is None


def test_a_bucket_alone_is_a_folder_and_an_invalid_bucket_is_one_line(
        bucket: Path, s3_endpoint: Any) -> None:
    """`s3://b` as out_dir broke at the first write with s3fs's "[Errno 22] The specified
    bucket is not valid" traceback (as input, a misleading "nothing matches"): one line
    naming the URI and S3's rule, before any work. A valid bucket alone is a folder: inputs
    under it are read, outputs go to s3://<bucket>/<run>/."""
    for out_dir, paths in (("s3://b", [f"s3://{BUCKET}/in/shard0.jsonl"]),
                           (str(bucket / "out"), ["s3://b"]),
                           (str(bucket / "out"), ["s3://B_d/x/*.jsonl"])):
        cfg = write_config(bucket / "bad-bucket.yaml", run="bad", out_dir=out_dir,
                           input={"paths": paths})
        done = _metamix("score", "-c", str(cfg))
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            ("error: s3://b/bad: 'b'", "error: s3://b: 'b'", "error: s3://B_d/x/*.jsonl")
        ), done.stderr
        assert "is not a valid S3 bucket name (3-63 lowercase letters" in lines[0]
    for name in ("metamix-bare-in", "metamix-bare-out"):
        s3_endpoint.create_bucket(Bucket=name)
    s3_endpoint.upload_file(str(bucket / "shard0.jsonl"), "metamix-bare-in", "shard0.jsonl")
    cfg = write_config(bucket / "bare.yaml", run="bare", out_dir="s3://metamix-bare-out",
                       input={"paths": ["s3://metamix-bare-in"]})
    _ok("score", "-c", str(cfg))
    keys = [o["Key"] for o in s3_endpoint.list_objects_v2(
        Bucket="metamix-bare-out", Prefix="bare/scored/")["Contents"]]
    assert keys == ["bare/scored/part-00000.parquet"]
