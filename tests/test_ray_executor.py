"""executor: ray on a real two-node cluster (head + a node joined on 127.0.0.1): score and
select give the local executor's bytes, shard tasks run on both raylets, a killed driver
resumes, and a worker node killed mid-stage costs retries, not outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROSE, run_outputs, write_config, write_jsonl
from tests.ray_cluster import LocalRayCluster

N_SHARDS = 10
SELECT = {"weights": {"rps_doc_frac_unique_words": 1.0, "fineweb_line_punct_ratio": 0.5},
          "hard_filters": ["gopher_quality"], "fraction": 0.5, "per_domain": True}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    c = LocalRayCluster(cpus_per_node=1)
    try:
        c.start(workers=1)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray")
    data = root / "data"
    data.mkdir()
    words = PROSE.split()
    for s in range(N_SHARDS):
        rows: list[object] = [
            {"id": f"s{s}-{i}", "domain": ["web", "books"][s % 2],
             "text": (" ".join(words[(i * 7) % 40:] + words[: (i * 7) % 40]) + "\n")
             * (1 + i % 4)} for i in range(150)]
        rows.append(b"{broken")
        write_jsonl(data / f"shard{s:02d}.jsonl", rows)
    return root


def _config(root: Path, name: str, **extra: object) -> Path:
    return write_config(root / f"{name}.yaml", run=name,
                        input={"paths": [str(root / "data" / "*.jsonl")]},
                        score={"batch_size": 50}, select=SELECT, **extra)


def _metamix(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "metamix", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _run(*args: str) -> str:
    proc = _metamix(*args)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def _ray_set(cluster: LocalRayCluster) -> list[str]:
    return ["--set", "executor=ray", "--set", f"ray.address={cluster.address}"]


@pytest.fixture(scope="module")
def local_outputs(corpus: Path) -> dict[str, bytes]:
    cfg = _config(corpus, "local", workers=2)
    _run("score", "-c", str(cfg))
    _run("select", "-c", str(cfg))
    return run_outputs(corpus / "out" / "local")


def _wait_for_records(stage_dir: Path, at_least: int, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        n = len(list((stage_dir.parent / "_manifests" / stage_dir.name).glob("part-*.json")))
        if n >= at_least:
            return n
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    raise TimeoutError(stage_dir)


def test_score_and_select_on_two_nodes_match_local_bytes(
        cluster: LocalRayCluster, corpus: Path, local_outputs: dict[str, bytes]) -> None:
    cfg = _config(corpus, "ray")
    out = _run("score", "-c", str(cfg), *_ray_set(cluster))
    assert f"ray {cluster.address}" in out
    _run("select", "-c", str(cfg), *_ray_set(cluster))
    run_dir = corpus / "out" / "ray"
    got = run_outputs(run_dir)
    assert sorted(got) == sorted(local_outputs)
    assert any(k.startswith("selected/") for k in got)
    assert [k for k in got if got[k] != local_outputs[k]] == []
    # the shard tasks really ran on both raylets
    placement = json.loads((run_dir / "logs" / "ray_placement.json").read_text())
    assert len(placement["scored"]) == N_SHARDS
    # the dedup stages too: one task per shard, per partition (16), and the clusters
    assert [len(placement[s]) for s in ("dedup_signatures", "dedup_pairs", "dedup_clusters",
                                        "dedup_write")] == [N_SHARDS, 16, 1, N_SHARDS]
    assert len({node for stage in placement.values() for node in stage.values()}) == 2
    summary = json.loads((run_dir / "score_summary.json").read_text())
    ingest = summary["stages"][0]
    assert ingest["read"] == N_SHARDS * 151
    assert ingest["written"] + sum(ingest["quarantined"].values()) == ingest["read"]


def test_ray_tasks_read_and_write_s3_with_the_drivers_credentials(
        cluster: LocalRayCluster, corpus: Path, s3_endpoint: Any,
        local_outputs: dict[str, bytes]) -> None:
    """The nodes were started without any AWS_* variable: the driver hands its own to the
    tasks (ray.env_vars), as on a cluster whose machines hold no credentials."""
    s3_endpoint.create_bucket(Bucket="ray-out")
    cfg = _config(corpus, "ray_s3", out_dir="s3://ray-out/runs")
    _run("score", "-c", str(cfg), *_ray_set(cluster))
    keys = [o["Key"] for o in s3_endpoint.list_objects_v2(
        Bucket="ray-out", Prefix="runs/ray_s3/scored/")["Contents"]]
    assert len([k for k in keys if k.endswith(".parquet")]) == N_SHARDS
    for key in keys:
        rel = key.removeprefix("runs/ray_s3/")
        assert s3_endpoint.get_object(Bucket="ray-out", Key=key)["Body"].read() == \
            local_outputs[rel], rel


def test_proxy_sweep_runs_as_ray_tasks_and_writes_the_local_runs_table(
        cluster: LocalRayCluster, tmp_path: Path) -> None:
    import ray
    from rich.console import Console

    from metamix.base.errors import UserError
    from metamix.mixtures.proxies import TrainingData, ValidationSet, build_token_cache
    from metamix.mixtures.proxies.synthetic import corpus_texts, make_corpus, make_tokenizer
    from metamix.mixtures.sweep import ProxyTask, RunsTable, run_sweep
    from metamix.pipeline.config import RayConfig

    paths = make_corpus(tmp_path, n_docs=120, n_valid=10)
    tok = make_tokenizer(tmp_path / "tokenizer.json", corpus_texts(paths["scored"]))
    train = str(build_token_cache(paths["scored"], tok, tmp_path / "cache"))
    valid = ValidationSet(str(build_token_cache(paths["validation"], tok, tmp_path / "cache")))
    tasks = [ProxyTask(run_id=f"run-{i}", kind="test", weights={"a": 1.0}, trainer="ngram",
                       trainer_params={}, data=TrainingData(train, token_budget=400 + 100 * i,
                                                            seed=i),
                       validation=valid, selection_docs=10, selection_tokens=400,
                       work_dir=str(tmp_path / "work"), sweep_key="k") for i in range(4)]
    quiet = Console(quiet=True)
    run_sweep(tasks, RunsTable(tmp_path / "local.parquet", "k"), workers=1, console=quiet,
              show_progress=False)
    cfg = RayConfig(address=cluster.address)
    try:
        rows = run_sweep(tasks, RunsTable(tmp_path / "ray.parquet", "k"), workers=1,
                         console=quiet, show_progress=False, ray=cfg)
        assert {r["status"] for r in rows.values()} == {"ok"}
        assert (tmp_path / "ray.parquet").read_bytes() == (tmp_path / "local.parquet"
                                                           ).read_bytes()
        # a resumed sweep finds every run done and submits nothing
        again = run_sweep(tasks, RunsTable(tmp_path / "ray.parquet", "k"), workers=1,
                          console=quiet, show_progress=False, ray=cfg)
        assert {k: r["mean_loss"] for k, r in again.items()} == \
            {k: r["mean_loss"] for k, r in rows.items()}
        # a GPU asked of this CPU-only cluster is one clear error, not a task that waits
        gpu = RayConfig(address=cluster.address,
                        proxy_resources={"ngram": {"num_cpus": 1, "num_gpus": 1}})
        with pytest.raises(UserError, match=r"ray.proxy_resources.ngram asks for 1 CPU / 1"):
            run_sweep(tasks, RunsTable(tmp_path / "gpu.parquet", "k"), workers=1,
                      console=quiet, show_progress=False, ray=gpu)
    finally:
        ray.shutdown()


def test_killed_driver_resumes_to_the_same_bytes(
        cluster: LocalRayCluster, corpus: Path, local_outputs: dict[str, bytes]) -> None:
    cfg = _config(corpus, "ray_resume")
    run_dir = corpus / "out" / "ray_resume"
    proc = _metamix("score", "-c", str(cfg), *_ray_set(cluster))
    done_at_kill = _wait_for_records(run_dir / "scored", 1, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done_at_kill < N_SHARDS
    _run("score", "-c", str(cfg), *_ray_set(cluster))
    log = json.loads((run_dir / "logs" / "score.json").read_text())
    resumed = {s["stage"]: s["resumed_shards"] for s in log["stages"]}
    assert resumed["ingest"] == N_SHARDS            # all ingested before the kill
    assert resumed["scored"] >= done_at_kill        # finished shards are not redone
    _run("select", "-c", str(cfg), *_ray_set(cluster))
    got = run_outputs(run_dir)
    assert [k for k in local_outputs if got.get(k) != local_outputs[k]] == []


def test_worker_node_killed_mid_stage_completes_with_the_same_bytes(
        cluster: LocalRayCluster, corpus: Path, local_outputs: dict[str, bytes]) -> None:
    cfg = _config(corpus, "ray_node_lost")
    run_dir = corpus / "out" / "ray_node_lost"
    proc = _metamix("score", "-c", str(cfg), *_ray_set(cluster))
    done_at_kill = _wait_for_records(run_dir / "scored", 1, proc)
    cluster.kill_node(1)   # the joined node: its raylet, object store and workers
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert done_at_kill < N_SHARDS
    placement = json.loads((run_dir / "logs" / "ray_placement.json").read_text())
    nodes = sorted(set(placement["scored"].values()))
    print(f"\nscored records at the kill: {done_at_kill}/{N_SHARDS}; shards per node after "
          f"the run: {[list(placement['scored'].values()).count(n) for n in nodes]}")
    _run("select", "-c", str(cfg), *_ray_set(cluster))
    got = run_outputs(run_dir)
    assert [k for k in local_outputs if got.get(k) != local_outputs[k]] == []
