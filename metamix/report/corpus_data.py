"""Corpus and accounting: documents and tokens per domain, read = written + dropped +
quarantined per stage, why rows were quarantined, and document lengths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from metamix.pipeline.manifest import MANIFESTS_DIR
from metamix.report.binning import histogram
from metamix.report.runfiles import read_json, read_table, shard_paths, shards_view

#: Stages in pipeline order; any other stage folder with a manifest follows, sorted.
STAGE_ORDER = ("ingest", "ingest_validation", "scored", "validation")


def stage_manifests(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{stage: _manifests/<stage>.json}`` for every stage that has one, in pipeline order
    (a run an older metamix wrote keeps them in ``<stage>/_manifest.json``)."""
    found = {p.parent.name: p for p in run_dir.glob("*/_manifest.json")}
    found.update({p.stem: p for p in (run_dir / MANIFESTS_DIR).glob("*.json")})
    order = [s for s in STAGE_ORDER if s in found] + sorted(set(found) - set(STAGE_ORDER))
    out = {}
    for stage in order:
        data = read_json(found[stage])
        if data is not None and isinstance(data.get("totals"), dict):
            out[stage] = data
    return out


def domain_counts(run_dir: Path) -> pd.DataFrame:
    """split (train/validation), domain, docs, tokens — from the scored and validation shards
    (``ingest`` when scoring has not run: tokens are then unknown)."""
    frames = []
    for split, stages in (("train", ("scored", "ingest")),
                          ("validation", ("validation", "ingest_validation"))):
        for stage in stages:
            paths = shard_paths(run_dir / stage)
            if not paths:
                continue
            con = shards_view(paths)
            has_tokens = "n_tokens" in con.table("shards").columns
            tokens = "SUM(n_tokens)" if has_tokens else "NULL"
            df = con.execute(f"SELECT domain, COUNT(*) AS docs, CAST({tokens} AS DOUBLE) AS "
                             "tokens FROM shards GROUP BY domain ORDER BY domain").df()
            df.insert(0, "split", split)
            frames.append(df)
            break
    if not frames:
        return pd.DataFrame(columns=["split", "domain", "docs", "tokens"])
    return pd.concat(frames, ignore_index=True)


def stage_accounting(manifests: dict[str, dict[str, Any]],
                     selection: dict[str, Any] | None) -> pd.DataFrame:
    """One row per stage: read, written, dropped, quarantined and whether they add up.
    Selection is the last stage when it ran (its drops are the documents not kept)."""
    rows = []
    for stage, data in manifests.items():
        t = data["totals"]
        rows.append({"stage": stage, "read": int(t.get("read", 0)),
                     "written": int(t.get("written", 0)),
                     "dropped": int(sum(t.get("dropped", {}).values())),
                     "quarantined": int(sum(t.get("quarantined", {}).values()))})
    inv = (selection or {}).get("invariant")
    if isinstance(inv, dict) and "rows_read" in inv:
        rows.append({"stage": "select", "read": int(inv["rows_read"]),
                     "written": int(inv.get("rows_written", 0)),
                     "dropped": int(inv.get("rows_dropped", 0)), "quarantined": 0})
    df = pd.DataFrame(rows, columns=["stage", "read", "written", "dropped", "quarantined"])
    df["adds_up"] = df["read"] == df["written"] + df["dropped"] + df["quarantined"]
    return df


def accounting_long(accounting: pd.DataFrame) -> pd.DataFrame:
    """stage, outcome (written/dropped/quarantined), rows, order — for a stacked bar."""
    outcomes = ("written", "dropped", "quarantined")
    long = accounting.melt(id_vars=["stage", "read"], value_vars=list(outcomes),
                           var_name="outcome", value_name="rows")
    long["order"] = long["outcome"].map({o: i for i, o in enumerate(outcomes)})
    return long.sort_values(["stage", "order"], kind="stable").reset_index(drop=True)


def reasons(manifests: dict[str, dict[str, Any]],
            selection: dict[str, Any] | None) -> pd.DataFrame:
    """stage, outcome (dropped/quarantined), reason, rows — every named reason of every
    stage, with selection's reasons (``not_selected``, hard filters) last."""
    rows = []
    for stage, data in manifests.items():
        for outcome in ("dropped", "quarantined"):
            for reason, n in sorted(data["totals"].get(outcome, {}).items()):
                rows.append({"stage": stage, "outcome": outcome, "reason": reason,
                             "rows": int(n)})
    totals = (selection or {}).get("totals", {})
    for reason, n in sorted(totals.get("dropped_docs", {}).items()):
        rows.append({"stage": "select", "outcome": "dropped", "reason": reason, "rows": int(n)})
    return pd.DataFrame(rows, columns=["stage", "outcome", "reason", "rows"])


def quarantine_examples(run_dir: Path, per_reason: int = 3) -> pd.DataFrame:
    """The first few quarantined rows of each (stage, reason), with their detail text."""
    frames = [df for p in shard_paths(run_dir / "quarantine")
              if (df := read_table(p)) is not None and len(df)]
    cols = ["stage", "reason", "shard", "row", "id", "detail"]
    if not frames:
        return pd.DataFrame(columns=cols)
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["stage", "reason", "shard", "row"], kind="stable")
    return df.groupby(["stage", "reason"], sort=False).head(per_reason)[cols].reset_index(
        drop=True)


def length_histogram(sample: pd.DataFrame, bins: int = 30) -> pd.DataFrame:
    """Tokens per document, per domain, on log-spaced bins (lengths span 4+ decades)."""
    if sample.empty or "n_tokens" not in sample:
        return pd.DataFrame()
    hist = histogram(sample["n_tokens"], sample["domain"], bins=bins, log=True)
    return hist.rename(columns={"group": "domain"})
