"""``metamix export``: the selection as a training job reads it.

* ``jsonl`` / ``parquet``: every selected document once, all domains shuffled together by
  the run's seed, cut into ``part-NNNNN`` shards of ``shard_docs`` documents.
* ``megatron``: one Megatron-LM indexed dataset per domain (``<domain>_text_document``
  ``.bin``/``.idx``, documents shuffled by the seed) tokenized with the run's tokenizer
  (``tokenizer.path`` when set, so the team's own tokenizer; else the BPE the run trained
  and counted ``n_tokens`` with), and ``megatron_data_path.txt``, the ``--data-path`` blend
  of those prefixes weighted by the shipped shares: each domain's share of the selection's
  tokens (``selection_summary.json``'s ``shares``), which is the mixture's when ``select``
  could fill its budgets.

Files are written under temporary names and renamed; ``_manifests/export-<format>.json``
(written last) lists them with their hashes, the per-domain counts and the shipped shares
beside the mixture's chosen ones. Same config and selection, same bytes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from metamix.base.atomic import atomic_path, write_bytes_atomic, write_json_atomic
from metamix.base.errors import UserError
from metamix.base.hashing import file_hash
from metamix.base.names import file_name
from metamix.base.progress import make_progress
from metamix.base.storage import is_remote, local_copy, open_binary
from metamix.pipeline.config import PipelineConfig
from metamix.pipeline.manifest import stage_summary_path
from metamix.pipeline.megatron import IndexedDatasetWriter, optimal_dtype

FORMATS = ("jsonl", "parquet", "megatron")
DEFAULT_COLUMNS = ("id", "text", "domain", "source")
_ENCODE_BATCH = 512


def selected_files(cfg: PipelineConfig) -> list[Path]:
    files = sorted((cfg.run_dir / "selected").glob("*.parquet"))
    if not files or not (cfg.run_dir / "selection_summary.json").is_file():
        raise UserError(f"no complete selection in {cfg.run_dir / 'selected'}: run "
                        "`metamix select` (or `metamix run`) first")
    return files


def _read_selection(files: list[Path], columns: list[str]) -> pa.Table:
    """The selected shards, locally or on an object store (``storage.open_binary``: pyarrow
    takes no ``UPath``)."""
    with open_binary(files[0]) as fh:
        schema = pq.read_schema(fh)
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise UserError(f"export --columns: {files[0]} has no column '{missing[0]}' "
                        f"(it has: {', '.join(schema.names)})")

    def read(path: Path) -> pa.Table:
        with open_binary(path) as fh:
            return pq.read_table(fh, columns=columns)
    return pa.concat_tables(read(f) for f in files)


def run_export(cfg: PipelineConfig, console: Console, fmt: str, out_dir: Path | None = None,
               *, shard_docs: int = 10_000, columns: list[str] | None = None,
               eod_token: str | None = None) -> Path:
    """Write the export; return its folder (default ``out/<run>/export/<format>``)."""
    if fmt not in FORMATS:
        raise UserError(f"export --format {fmt!r}: one of {', '.join(FORMATS)}")
    if shard_docs <= 0:
        raise UserError("export --shard-docs: must be > 0")
    out = out_dir if out_dir is not None else cfg.run_dir / "export" / fmt
    if is_remote(out):
        raise UserError(f"export writes a local folder, not {out}: pass --out /local/dir "
                        "(the run on the object store is read in place)")
    files = selected_files(cfg)
    shares = _shares(cfg)
    started = time.monotonic()
    if fmt == "megatron":
        written, rows = _megatron(cfg, console, files, out, eod_token, shares)
    else:
        written, rows = _shards(cfg, console, files, out, fmt, shard_docs,
                                list(columns or DEFAULT_COLUMNS))
    for stale in out.glob("*"):
        if stale.is_file() and stale not in written and (
                stale.name.startswith("part-") or stale.name.endswith(("_document.bin",
                                                                       "_document.idx"))):
            stale.unlink()
    write_json_atomic(stage_summary_path(cfg.run_dir, f"export-{fmt}"), {
        "format": fmt, "seed": cfg.seed, "folder": _label(out, cfg),
        "files": {p.name: file_hash(p) for p in sorted(written)}, "per_domain": rows,
        "shares": shares})
    table = Table(title=f"metamix export · {fmt} · {time.monotonic() - started:.1f}s",
                  title_justify="left")
    for col in ("domain", "docs", "tokens"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for domain, row in rows.items():
        table.add_row(domain, f"{row['docs']:,}", f"{row['tokens']:,}")
    console.print(table)
    console.print(f"exported {len(written)} files to {out}")
    return out


def _label(path: Path, cfg: PipelineConfig) -> str:
    inside = not is_remote(cfg.run_dir) and path.is_relative_to(cfg.run_dir)
    return path.relative_to(cfg.run_dir).as_posix() if inside else str(path)


def _per_domain(table: pa.Table) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for domain, n in zip(table.column("domain").to_pylist(),
                         table.column("n_tokens").to_pylist(), strict=True):
        entry = rows.setdefault(domain, {"docs": 0, "tokens": 0})
        entry["docs"] += 1
        entry["tokens"] += int(n)
    return dict(sorted(rows.items()))


def _shards(cfg: PipelineConfig, console: Console, files: list[Path], out: Path, fmt: str,
            shard_docs: int, columns: list[str]) -> tuple[set[Path], dict[str, Any]]:
    table = _read_selection(files, list(dict.fromkeys([*columns, "domain", "n_tokens"])))
    order = np.random.default_rng(cfg.seed).permutation(table.num_rows)
    written: set[Path] = set()
    with make_progress(console, cfg.progress) as progress:
        bar = _Bar(progress, table.num_rows)
        for i, start in enumerate(range(0, max(table.num_rows, 1), shard_docs)):
            part = table.take(order[start:start + shard_docs]).select(columns)
            path = out / f"part-{i:05d}.{fmt}"
            with atomic_path(path) as tmp:
                if fmt == "parquet":
                    pq.write_table(part, tmp, compression="zstd")
                else:
                    lines = [orjson.dumps(row) for row in part.to_pylist()]
                    tmp.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
                nbytes = tmp.stat().st_size
            written.add(path)
            bar.advance(part.num_rows, nbytes)
    return written, _per_domain(table)


class _Bar:
    """The export bar's documents, MB written and docs/s (they stayed at 0.0 MB, 0 docs/s)."""

    def __init__(self, progress: Any, total: int) -> None:
        self.progress, self.docs, self.bytes = progress, 0, 0
        self.started = time.monotonic()
        self.task = progress.add_task("export", total=total, mb=0.0, rate=0.0)

    def advance(self, docs: int, nbytes: int) -> None:
        self.docs, self.bytes = self.docs + docs, self.bytes + nbytes
        self.progress.update(self.task, advance=docs, mb=self.bytes / 1e6,
                             rate=self.docs / max(time.monotonic() - self.started, 1e-9))


def _shares(cfg: PipelineConfig) -> dict[str, Any]:
    """The selection's shipped token shares and the mixture's chosen ones, as
    ``selection_summary.json`` records them (its ``shares``; one rounding everywhere)."""
    summary = orjson.loads((cfg.run_dir / "selection_summary.json").read_bytes())
    shares = summary.get("shares") or {}
    shipped = shares.get("shipped")
    if shipped is None:   # a summary from before shares were recorded: from its token counts
        from metamix.pipeline.selection.shares import rounded_shares

        tokens = {d: e["tokens_after"] for d, e in summary["domains"].items()}
        shipped = rounded_shares(tokens) if sum(tokens.values()) else {}
    return {"shipped": shipped, "chosen": shares.get("chosen")}


def _megatron(cfg: PipelineConfig, console: Console, files: list[Path], out: Path,
              eod_token: str | None, shares: dict[str, Any]
              ) -> tuple[set[Path], dict[str, Any]]:
    from tokenizers import Tokenizer

    tok_path = cfg.run_dir / "tokenizer.json"
    if not tok_path.is_file():
        raise UserError(f"{tok_path} is missing: run `metamix score` first")
    tokenizer = Tokenizer.from_file(local_copy(tok_path))  # a local file only
    eod = None
    if eod_token is not None:
        eod = tokenizer.token_to_id(eod_token)
        if eod is None:
            raise UserError(f"export --eod-token {eod_token!r}: not in {tok_path}")
    dtype = optimal_dtype(tokenizer.get_vocab_size(with_added_tokens=True))
    table = _read_selection(files, ["text", "domain", "n_tokens"])
    rows = _per_domain(table)
    rng = np.random.default_rng(cfg.seed)
    written: set[Path] = set()
    exported: dict[str, dict[str, int]] = {}
    domains = table.column("domain").to_numpy(zero_copy_only=False)
    with make_progress(console, cfg.progress) as progress:
        bar = _Bar(progress, table.num_rows)
        for domain in rows:
            index = np.flatnonzero(domains == domain)
            index = index[rng.permutation(len(index))]
            prefix = out / f"{file_name(domain)}_text_document"
            tokens = 0
            with IndexedDatasetWriter(prefix, dtype) as writer:
                for start in range(0, len(index), _ENCODE_BATCH):
                    texts = table.column("text").take(index[start:start + _ENCODE_BATCH])
                    batch_tokens = 0
                    for enc in tokenizer.encode_batch(texts.to_pylist(),
                                                      add_special_tokens=False):
                        ids = enc.ids if eod is None else [*enc.ids, eod]
                        writer.add_document(np.asarray(ids))
                        batch_tokens += len(ids)
                    tokens += batch_tokens
                    bar.advance(len(texts), batch_tokens * np.dtype(dtype).itemsize)
            written |= {prefix.parent / (prefix.name + s) for s in (".bin", ".idx")}
            exported[domain] = {"docs": len(index), "tokens": tokens}
    weights = {d: float(shares["shipped"].get(d, 0.0)) for d in exported}
    # absolute prefixes: the training job reads them from wherever it starts
    blend = " ".join(f"{weights[d]:.6f} {out.resolve() / (file_name(d) + '_text_document')}"
                     for d in exported if weights[d] > 0)
    path = out / "megatron_data_path.txt"
    write_bytes_atomic(path, (blend + "\n").encode())
    written.add(path)
    return written, exported
