"""Object-store paths: which strings are URIs, how paths stay pathlib for local runs, and the
config keys of the executors (no cluster, no S3 server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from metamix.base.errors import UserError
from metamix.base.storage import as_path, is_remote, is_uri, relative, require_local
from metamix.config import load_config
from metamix.pipeline.ray_executor import forwarded_env, task_options
from tests.conftest import write_config


def test_uris_become_upaths_and_local_paths_stay_pathlib() -> None:
    assert is_uri("s3://bucket/a/b.jsonl") and is_uri("gs://b/x")
    assert not is_uri("/data/x.jsonl") and not is_uri("data/x") and not is_uri("file:///x")
    local = as_path("data/x.parquet")
    assert type(local) is type(Path("data/x.parquet")) and not is_remote(local)
    assert as_path("file:///tmp/x") == Path("/tmp/x")
    remote = as_path("s3://bucket/out/run")
    assert is_remote(remote) and str(remote / "scored" / "part-00000.parquet") == \
        "s3://bucket/out/run/scored/part-00000.parquet"
    assert (remote / "scored").name == "scored" and str(remote.parent) == "s3://bucket/out"
    assert relative(remote / "tokens" / "scored" / "p.arrow", remote) == "tokens/scored/p.arrow"
    assert relative(Path("/a/b/c"), Path("/a")) == "b/c"


def test_config_paths_on_object_stores_resolve_to_upaths(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", out_dir="s3://bucket/runs",
                                   input={"paths": ["s3://bucket/in/*.jsonl"]}))
    assert str(cfg.run_dir) == "s3://bucket/runs/t" and is_remote(cfg.run_dir)
    with pytest.raises(UserError, match="metarater needs a local out_dir"):
        require_local(cfg.run_dir, "metarater")
    from metamix.mixtures.mix.config import MixConfig
    from metamix.mixtures.mix.pipeline import run_mix

    with pytest.raises(UserError, match="mix needs a local out_dir"):
        run_mix(cfg, MixConfig(), Console(quiet=True))


def test_executor_keys_are_validated(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path / "c.yaml", input={"paths": ["x"]}),
                      {"executor": "ray", "ray.address": "ray://head:10001",
                       "ray.proxy_resources": {"gpt": {"num_gpus": 1}}})
    assert cfg.executor == "ray" and cfg.ray.address == "ray://head:10001"
    assert cfg.ray.proxy_resources["gpt"].num_gpus == 1
    assert task_options(cfg.ray.proxy_resources["gpt"], 2) == {
        "num_cpus": 1, "num_gpus": 1, "max_retries": 2}
    with pytest.raises(UserError, match=r"executor: Input should be 'local' or 'ray'"):
        load_config(write_config(tmp_path / "d.yaml", input={"paths": ["x"]}),
                    {"executor": "slurm"})
    with pytest.raises(UserError, match=r"ray.num_cpus_per_tsk: unknown key"):
        load_config(write_config(tmp_path / "e.yaml", input={"paths": ["x"]}),
                    {"ray.num_cpus_per_tsk": 2})


def test_only_matching_driver_variables_reach_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("SECRET_OTHER", "no")
    env = forwarded_env(["AWS_*"])
    assert env["AWS_ACCESS_KEY_ID"] == "k" and env["AWS_ENDPOINT_URL"].endswith(":9000")
    assert "SECRET_OTHER" not in env
