"""The package installs as one namespace, and its layers import in one direction only."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: Source folder → installed package, as pyproject's package-dir maps them.
FOLDERS = {"metamix": "metamix", "scorers": "metamix.scorers", "pipeline": "metamix.pipeline",
           "mixtures": "metamix.mixtures"}
#: Layer of each top package: a module may import only from its own layer or lower ones.
LAYERS = {"metamix.base": 0, "metamix.scorers": 1, "metamix.pipeline": 2,
          "metamix.mixtures": 3, "metamix": 4}


def source_modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            mods[".".join([package, *parts])] = path
    return mods


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Every metamix import of every module, lazy ones inside functions included."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + [base] * bool(base))
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                if not target.startswith("metamix"):
                    continue
                dep = resolve(target)
                if dep and dep != mod and not mod.startswith(dep + "."):
                    graph[mod].add(dep)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = import_graph(source_modules())
    assert sum(map(len, graph.values())) > 100  # the walk really saw the imports
    assert find_cycles(graph) == []


def test_layers_import_downward_only() -> None:
    graph = import_graph(source_modules())
    upward = sorted(f"{mod} -> {dep}" for mod, deps in graph.items() for dep in deps
                    if layer(dep) > layer(mod))
    assert upward == []
    # the base is self-contained: it imports nothing else of metamix
    assert all(layer(dep) == 0 for mod, deps in graph.items() if layer(mod) == 0
               for dep in deps)


def test_pyproject_lists_every_package_folder() -> None:
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {m for m, p in source_modules().items() if p.name == "__init__.py"}
    assert set(config["packages"]) == packages


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list tracked files")
def test_wheel_holds_only_the_metamix_namespace(tmp_path: Path) -> None:
    src = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "pyproject.toml", "README.md", *FOLDERS],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in (r for r in listed if (REPO / r).is_file()):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], check=True, capture_output=True, text=True)
    # `make setup` printed pages of these (issue 29): `project.license` as a TOML table, and
    # every data folder (models/, rubrics/) taken for a package missing from `packages`
    warned = [line.strip() for line in (built.stdout + built.stderr).splitlines()
              if "Warning:" in line]
    assert warned == []
    wheel = next((tmp_path / "dist").glob("metamix-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("metamix/", "metamix-"))]
    assert outside == []
    expected = {"/".join(m.split(".")) + ("/__init__.py" if p.name == "__init__.py" else ".py")
                for m, p in source_modules().items()}
    assert expected <= set(names)
    assert "metamix/scorers/prrc/rubrics/reasoning.v1.md" in names
    assert "metamix/scorers/model_based/models/dclm_fasttext_hq.ftz" in names

    # A clean environment with only the wheel: `import pipeline` fails, metamix.* works.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for name in ("pipeline", "scorers", "mixtures"):
        proc = subprocess.run([str(python), "-c", f"import {name}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr
    proc = subprocess.run([str(python), "-c", "import metamix.pipeline, metamix.scorers, "
                           "metamix.mixtures, metamix.base.errors; print(metamix.__file__)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip().startswith(str(site))
