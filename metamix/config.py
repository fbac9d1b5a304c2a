"""The whole-run YAML config: the pipeline's sections plus the Meta-rater, mixture and
annotation sections, composed here at the top so no lower layer imports a higher one.

Unknown keys and bad values fail with the key's dotted path (``metarater.k``), so a typo in
a config never silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from metamix.base.errors import UserError
from metamix.mixtures.metarater.config import MetaraterConfig
from metamix.mixtures.mix.config import MixConfig
from metamix.pipeline.config import PipelineConfig
from metamix.scorers.prrc.annotate import AnnotateConfig
from metamix.scorers.prrc.train_rater import TrainRaterConfig


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping key given twice (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (lines {seen[key]} and {line})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error or a repeated key is one line: file:line: problem."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class RunConfig(PipelineConfig):
    annotate: AnnotateConfig | None = None
    train_rater: TrainRaterConfig | None = None
    metarater: MetaraterConfig | None = None
    mix: MixConfig | None = None


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: 'file: key.path: message'."""
    lines = []
    for err in exc.errors():
        loc = _dotted(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if not loc:   # a check across keys: the message names them
            lines.append(f"{source}: {msg.removeprefix('Value error, ')}")
            continue
        lines.append(f"{source}: {loc}: {msg}")
    return "\n".join(lines)


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``inputs.1.text_field`` as ``inputs[1].text_field`` (other lists keep ``.N``)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int) and i and loc[i - 1] == "inputs":
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_config(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a YAML config; relative paths in it resolve against the repo/cwd."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of keys")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    data.setdefault("base_dir", str(Path.cwd()))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, str(path))) from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {dotted}: {part} is not a mapping")
    node[leaf] = value
