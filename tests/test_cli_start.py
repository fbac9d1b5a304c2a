"""Fast start: commands import only the libraries they use (torch/BoTorch/SciPy only for the
proxies and the mixture search), and the lazy pieces behave like the eager ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metamix.cli import build_parser
from metamix.mixtures.proxies import _TRAINER_CLASSES, check_trainer_params, make_trainer
from metamix.pipeline.selection import quota
from tests.conftest import REPO

HEAVY = ("torch", "botorch", "gpytorch", "scipy", "transformers", "sklearn", "numba",
         "pandas", "lightgbm", "fasttext")

PROBE = """
import json, sys
from metamix.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_cli(*args: str, cwd: Path = REPO) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, cwd=cwd, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["code"], {m.split(".")[0] for m in result["modules"]}


def test_help_imports_nothing_heavy() -> None:
    code, modules = run_cli("--help")
    assert code == 0
    assert not modules & {*HEAVY, "numpy", "pyarrow", "duckdb", "pydantic"}


def test_select_imports_no_model_library(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    scored = tmp_path / "out" / "t" / "scored"
    scored.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["x", "y", "z"],
                             "domain": ["web"] * 3, "source": ["s"] * 3,
                             "n_tokens": pa.array([1, 2, 3], pa.int64()),
                             "q": [0.1, 0.5, 0.9]}), scored / "part-00000.parquet")
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({
        "run": "t", "out_dir": str(tmp_path / "out"), "progress": False,
        "input": {"paths": [str(tmp_path / "none.jsonl")]},
        "select": {"weights": {"q": 1.0}, "fraction": 0.5}}))
    code, modules = run_cli("select", "--config", str(config), cwd=tmp_path)
    assert code == 0
    assert pq.read_table(tmp_path / "out" / "t" / "selected" / "web.parquet").column(
        "id").to_pylist() == ["c", "b"]
    assert not modules & set(HEAVY), modules & set(HEAVY)


@pytest.mark.parametrize("command", ["fit", "suggest", "optimize", "run"])
def test_mix_help_imports_no_model_library(command: str) -> None:
    """`mix <command> --help` took 4-6 s importing torch/BoTorch/SciPy for the parser's
    choices (issue 29); the parser now reads them from ``mix.names``."""
    import time

    start = time.perf_counter()
    code, modules = run_cli("mix", command, "--help")
    seconds = time.perf_counter() - start
    assert code == 0
    assert not modules & {*HEAVY, "numpy", "pyarrow"}, modules & {*HEAVY, "numpy", "pyarrow"}
    assert seconds < 3.0  # the interpreter's start included; 0.3 s here, 4-6 s before


def test_command_list_reads_the_same_with_the_mix_placeholder() -> None:
    full = build_parser().format_help()
    for argv in (["--help"], ["score"], []):
        assert build_parser(argv).format_help() == full


def test_mix_subcommands_are_built_when_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser(["mix", "fit", "--help"])
    with pytest.raises(SystemExit):
        parser.parse_args(["mix", "fit", "--help"])
    assert "--surrogate" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(_TRAINER_CLASSES))
def test_trainer_parameters_read_from_source_match_the_constructor(name: str) -> None:
    import inspect

    import metamix.mixtures.proxies as proxies

    proxies._constructor_signature.cache_clear()
    from_source = proxies._constructor_signature(name)  # module not imported yet, or is
    make_trainer(name, {"command": "true"} if name == "external" else {})
    proxies._constructor_signature.cache_clear()
    from_class = proxies._constructor_signature(name)
    assert from_source == from_class
    module, cls = _TRAINER_CLASSES[name]
    sig = inspect.signature(getattr(sys.modules[module], cls).__init__)
    assert list(from_class[0]) == [p for p in sig.parameters if p != "self"]


def test_check_trainer_params_rejects_what_the_constructor_rejects() -> None:
    check_trainer_params("ngram", {"order": 2})
    check_trainer_params("gpt", {"d_model": 64, "n_layers": 2})
    with pytest.raises(TypeError, match="dmodel"):
        check_trainer_params("gpt", {"dmodel": 64})
    with pytest.raises(TypeError, match="command"):
        check_trainer_params("external", {})
    with pytest.raises(TypeError):
        make_trainer("external", {})


def test_first_fit_python_and_compiled_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 4, 5000).astype(np.int64)
    sizes = rng.integers(1, 1000, 5000).astype(np.int64)
    budgets = np.array([0, 100_000, 500_000, 10**9], dtype=np.int64)
    small = quota.first_fit(group, sizes, budgets)
    monkeypatch.setattr(quota, "COMPILED_FIRST_FIT_ROWS", 0)
    assert np.array_equal(quota.first_fit(group, sizes, budgets), small)
    kept_tokens = np.bincount(group[small], weights=sizes[small], minlength=4)
    assert kept_tokens[0] == 0 and kept_tokens[3] == sizes[group == 3].sum()
    assert kept_tokens[1] <= 100_000 and kept_tokens[2] <= 500_000


@pytest.mark.parametrize(("user", "expected"), [(None, "20"), ("25", "25")])
def test_commands_keep_openblas_threads_from_spinning(user: str | None, expected: str) -> None:
    """Each OpenBLAS thread busy-waits 2^28 cycles (~0.1 s) after it starts and after
    every call unless told less: every command sets a short wait before numpy loads (its
    workers inherit it), unless the user chose one."""
    import os

    probe = ("import os, sys\nfrom metamix.cli import main\nmain(['scorers'])\n"
             "print('numpy' in sys.modules, os.environ['OPENBLAS_THREAD_TIMEOUT'])\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == f"True {expected}"
