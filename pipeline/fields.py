"""Field mappings: dotted paths into nested records, and the check that every mapped field
exists before any work starts.

A path such as ``meta.lang`` names the key ``meta.lang`` if a record has that literal key,
else ``lang`` inside ``meta`` (a JSON object, a Parquet struct or a ``datasets`` struct
feature). A mapping that names a key the data lacks is a config mistake, not thousands of
bad rows: it stops the run with the file, the key and the keys that do exist.

Kept user fields (``input.keep_fields``) get one Arrow type for the whole run, so every
shard has the same schema and the usual loaders (DuckDB, pandas, ``datasets``) read the
folder as one table: Parquet and ``datasets`` inputs give their column types; JSONL types
are inferred from the first records of each file (nested values are kept as JSON text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from metamix.base.errors import UserError
from metamix.pipeline.config import InputConfig

MISSING = object()
#: Records of each JSONL file that the mapping check reads.
CHECK_RECORDS = 100


def get_path(obj: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (literal key first, then dotted segments), or ``MISSING``."""
    if path in obj:
        return obj[path]
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def record_paths(obj: Mapping[str, Any], prefix: str = "", depth: int = 4) -> list[str]:
    """Every key of a record as a dotted path, nested objects expanded."""
    out = []
    for key, value in obj.items():
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(value, Mapping) and depth > 1:
            out.extend(record_paths(value, f"{path}.", depth - 1))
    return out


def schema_paths(schema: pa.Schema | pa.StructType, prefix: str = "") -> list[str]:
    """Every column of an Arrow schema as a dotted path, struct fields expanded."""
    out = []
    for f in schema:
        out.append(f"{prefix}{f.name}")
        if pa.types.is_struct(f.type):
            out.extend(schema_paths(f.type, f"{prefix}{f.name}."))
    return out


def schema_type(schema: pa.Schema, path: str) -> pa.DataType | None:
    """The Arrow type at ``path`` (literal column first, then struct fields), or None."""
    if path in schema.names:
        return schema.field(path).type
    node: pa.Schema | pa.StructType = schema
    found: pa.DataType | None = None
    for part in path.split("."):
        if found is not None:
            if not pa.types.is_struct(found):
                return None
            node = found
        index = node.get_field_index(part)
        if index < 0:
            return None
        found = node.field(index).type
    return found


def top_columns(inp: InputConfig, names: Iterable[str]) -> list[str]:
    """The top-level columns that hold every mapped path (what a columnar reader reads)."""
    names = list(names)
    out: dict[str, None] = {}
    for path in [*mapped_paths(inp, required_only=False).values(),
                 *inp.kept_columns().values()]:
        if path in names:
            out.setdefault(path)
        elif (head := path.split(".", 1)[0]) in names:
            out.setdefault(head)
    return list(out)


def mapped_paths(inp: InputConfig, required_only: bool = True) -> dict[str, str]:
    """Config key → path of every field mapping (kept fields excluded).

    ``required_only`` leaves out mappings whose absence is allowed: ``source_field`` at its
    default (documents then take the file name as source) and ``domain_field`` when the
    domain comes from the path or the config."""
    at = inp.key
    keys = {f"{at}.text_field": inp.text_field}
    if inp.id_field:
        keys[f"{at}.id_field"] = inp.id_field
    if inp.domain_field and (not required_only or not (inp.domain_from_path or inp.domain)):
        keys[f"{at}.domain_field"] = inp.domain_field
    if inp.source_field and (not required_only or "source_field" in inp.model_fields_set):
        keys[f"{at}.source_field"] = inp.source_field
    return keys


def _required(inp: InputConfig) -> dict[str, str]:
    keys = mapped_paths(inp)
    keys.update({f"{inp.key}.keep_fields.{name}": path
                 for name, path in inp.kept_columns().items()})
    return keys


def _hint(key: str) -> str:
    at, _, leaf = key.rpartition(".")
    if at.endswith("keep_fields"):
        return ""
    if leaf == "id_field":
        return f"; set {at}.id_field: null to use content hashes as ids"
    if leaf == "source_field":
        return f"; leave {at}.source_field out to use the file name"
    if leaf == "domain_field":
        return (f"; or take the domain from the path ({at}.domain_from_path) or give one "
                f"({at}.domain)")
    return ""


def _listing(paths: Iterable[str], limit: int = 40) -> str:
    ordered = sorted(dict.fromkeys(paths))
    shown = ", ".join(ordered[:limit])
    return shown + (f", … ({len(ordered) - limit} more)" if len(ordered) > limit else "")


def check_schema(label: str, inp: InputConfig, schema: pa.Schema) -> dict[str, pa.DataType]:
    """Stop unless every mapped path is a column (or struct field); return the kept fields'
    types."""
    for key, path in _required(inp).items():
        if schema_type(schema, path) is None:
            raise UserError(f"{label}: {key} = {path!r} is not a column (columns: "
                            f"{_listing(schema_paths(schema))}){_hint(key)}")
    return {name: schema_type(schema, path) for name, path in inp.kept_columns().items()}


def check_records(label: str, inp: InputConfig, objs: list[Mapping[str, Any]]
                  ) -> dict[str, pa.DataType]:
    """Stop unless every mapped path is in at least one of ``objs`` (the first records of a
    JSONL file); return the kept fields' types inferred from them."""
    if not objs:
        return {}
    for key, path in _required(inp).items():
        if all(get_path(o, path) is MISSING for o in objs):
            keys = (p for o in objs for p in record_paths(o))
            raise UserError(f"{label}: {key} = {path!r} is in no record of the first "
                            f"{len(objs)} read (keys there: {_listing(keys)}){_hint(key)}")
    types = {}
    for name, path in inp.kept_columns().items():
        types[name] = infer_type([get_path(o, path) for o in objs])
    return types


def infer_type(values: list[Any]) -> pa.DataType:
    """One Arrow type for JSON values: bool, int64, float64, else string (objects, lists
    and mixed kinds as JSON text); no value at all gives null (settled by other files)."""
    kinds = {_json_kind(v) for v in values if v is not None and v is not MISSING}
    if not kinds:
        return pa.null()
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "other"


def unify(name: str, seen: dict[str, tuple[pa.DataType, str]], new: pa.DataType,
          label: str, key: str = "input") -> None:
    """Merge the type ``label`` gives kept field ``name`` into ``seen`` (type, first file)."""
    if name not in seen or pa.types.is_null(seen[name][0]):
        seen[name] = (new, label)
        return
    old, where = seen[name]
    if pa.types.is_null(new) or new == old:
        return
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if all(any(t(x) for t in numeric) for x in (old, new)):
        both_int = pa.types.is_integer(old) and pa.types.is_integer(new)
        seen[name] = (pa.int64() if both_int else pa.float64(), where)
        return
    if pa.types.is_string(old) and not pa.types.is_nested(new):
        return      # JSONL mixes become text: any scalar can be written as text
    if pa.types.is_string(new) and not pa.types.is_nested(old):
        seen[name] = (pa.string(), where)
        return
    raise UserError(f"{key}.keep_fields.{name}: {old} in {where} but {new} in {label}; the "
                    "column needs one type in every file")


@dataclass(frozen=True)
class KeptField:
    """One kept user field: output column name, path in the record (None: a column of
    another source, null in this one), Arrow type."""

    name: str
    path: str | None
    type: pa.DataType

    def convert(self, value: Any) -> tuple[bool, Any]:
        """(ok, value for the Arrow column); not ok when the value does not fit the type."""
        if value is None or value is MISSING:
            return True, None
        t = self.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            if isinstance(value, str):
                return True, value
            import orjson

            return True, orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        if pa.types.is_boolean(t):
            return isinstance(value, bool), value
        if pa.types.is_integer(t):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return isinstance(value, int) and not isinstance(value, bool), value
        if pa.types.is_floating(t):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return ok, float(value) if ok else value
        return True, value      # Parquet / datasets types: values come typed already


def kept_schema(fields: list[KeptField]) -> list[pa.Field]:
    return [pa.field(f.name, f.type) for f in fields]
