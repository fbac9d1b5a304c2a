"""The config reference (docs/config-reference.md), generated from the pydantic models the
loader validates against, so a key cannot exist without a line saying what it does.

``python -m metamix.config_reference`` rewrites the table between the markers of that file
(``--check`` only compares); ``tests/test_config_reference.py`` fails when it is stale.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from metamix.config import RunConfig

BEGIN = "<!-- config-reference:begin (python -m metamix.config_reference) -->"
END = "<!-- config-reference:end -->"
REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation)
               if typing.get_origin(a) in (list, tuple))


def type_name(annotation: Any) -> str:
    """A short, readable type: ``int``, ``minmax | percentile``, ``list of str``, ``… or
    null``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [type_name(a) for a in args if a is not type(None)]
        optional = " or null" if type(None) in args else ""
        return " or ".join(dict.fromkeys(names)) + optional
    if origin in (list, tuple):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"{{{type_name(args[0])}: {type_name(args[1])}}}" if args else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(m.value) for m in annotation)
    if annotation is Any:
        return "any"
    name = getattr(annotation, "__name__", str(annotation))
    return {"Path": "path", "PathLike": "path"}.get(name, name)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [v.model_dump(mode="json", exclude_defaults=True) or v.model_dump(mode="json")
                 for v in value]
    text = json.dumps(value, default=str, ensure_ascii=False)
    return f"`{text}`" if len(text) <= 60 else f"`{text[:57]}…`"


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")


def _cell(text: str) -> str:
    return (text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\n", " "))


def rows(model: type[BaseModel] = RunConfig, prefix: str = "",
         documented: dict[type[BaseModel], str] | None = None
         ) -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) for every config key, depth first."""
    documented = {} if documented is None else documented
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = prefix + (info.alias or name)
        subs = _models(info.annotation)
        described = info.description or ""
        if len(subs) == 1:
            sub = subs[0]
            if sub in documented:
                yield (key, "section", _default(info),
                       _cell(described or f"the same keys as `{documented[sub]}`"))
                continue
            many = _is_list(info.annotation)
            documented[sub] = key + ("[]" if many else "")
            yield (key, "list of sections" if many else "section", _default(info),
                   _cell(described or _doc(sub)))
            yield from rows(sub, documented[sub] + ".", documented)
        elif subs:   # a list of tagged variants (e.g. metarater.targets)
            yield key, "list of sections", _default(info), _cell(described)
            yield from _variant_rows(subs, key, documented)
        else:
            yield key, _cell(type_name(info.annotation)), _cell(_default(info)), _cell(described)


def _variant_rows(subs: list[type[BaseModel]], key: str,
                  documented: dict[type[BaseModel], str]) -> Iterator[tuple[str, str, str, str]]:
    common = set.intersection(*(set(m.model_fields) for m in subs))
    for name in sorted(common, key=list(subs[0].model_fields).index):
        infos = [m.model_fields[name] for m in subs]
        types = " | ".join(dict.fromkeys(type_name(i.annotation) for i in infos))
        yield (f"{key}[].{name}", _cell(types), _cell(_default(infos[0])),
               _cell(infos[0].description or ""))
    for sub in subs:
        kind = sub.model_fields.get("kind")
        tag = type_name(kind.annotation) if kind else sub.__name__
        head = f"{key}[{tag}]."
        for name, info in sub.model_fields.items():
            if name in common:
                continue
            nested = _models(info.annotation)
            if nested and nested[0] in documented:
                yield (head + name, "section", _default(info),
                       _cell(info.description or f"the same keys as `{documented[nested[0]]}`"))
            else:
                yield (head + name, _cell(type_name(info.annotation)), _cell(_default(info)),
                       _cell(info.description or ""))


def table() -> str:
    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {w} |" for k, t, d, w in rows()]
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with the generated table between the markers."""
    if BEGIN not in text or END not in text:
        raise SystemExit(f"the reference file has no {BEGIN} … {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--file", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    text = args.file.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.file}: config reference is stale; run python -m "
                  "metamix.config_reference", file=sys.stderr)
            return 1
        return 0
    args.file.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
