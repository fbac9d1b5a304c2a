"""The self-contained page and the PNGs beside it.

Vega-Lite through vl-convert: one Rust wheel embeds Vega, Vega-Lite and vega-embed, so it
both bundles the JavaScript the page inlines (no CDN: the page works from disk, offline)
and renders each figure to PNG with no browser at all.
"""

from __future__ import annotations

import json
import math
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import vl_convert as vlc
from markupsafe import Markup

from metamix.base.atomic import write_bytes_atomic
from metamix.report.model import Figure, Section

TEMPLATE = Path(__file__).with_name("page.html.j2")


def vegalite_version() -> str | None:
    """The Vega-Lite version Altair writes specs for, when vl-convert has it (else latest)."""
    import altair as alt

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vlc.get_vegalite_versions() else None


def javascript_bundle(cache_dir: Path | None) -> str:
    """vega + vega-lite + vega-embed as one script (~0.9 MB). Bundling takes seconds, so it
    is cached per vl-convert and Vega-Lite version."""
    vl = vegalite_version()
    path = (cache_dir / f"vega-bundle-{version('vl-convert-python')}-{vl or 'latest'}.js"
            if cache_dir else None)
    if path is not None and path.is_file():
        return path.read_text(encoding="utf-8")
    bundle = vlc.javascript_bundle(vl_version=vl)
    if path is not None:
        write_bytes_atomic(path, bundle.encode("utf-8"))
    return bundle


def _json_in_script(text: str) -> str:
    """JSON that cannot close the <script> element it sits in ("<\\/" is JSON for "</")."""
    return text.replace("</", "<\\/")


def _code_in_script(code: str) -> str:
    """JavaScript that cannot close its <script> element. The bundle has no "</script"; if
    a future one does, it sits in a string or regex, where "<\\/" means the same."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) >= 1000):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[_cell(v.item() if hasattr(v, "item") else v) for v in row]
            for row in frame.itertuples(index=False, name=None)]


def render_html(title: str, subtitle: str, sections: list[Section], bundle: str) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["rows"] = _rows
    env.tests["instanceof_figure"] = lambda item: isinstance(item, Figure)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    specs = [{"id": f.id, "spec": f.spec} for s in sections for f in s.figures]
    specs_json = json.dumps(specs, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                            allow_nan=False)
    return template.render(
        title=title, subtitle=subtitle, sections=sections,
        n_figures=len(specs), bundle=Markup(_code_in_script(bundle)),
        specs_json=Markup(_json_in_script(specs_json)))


def write_pngs(figures: list[Figure], folder: Path, scale: float) -> None:
    """``<id>.png`` per figure; PNGs of figures this report no longer has are removed."""
    vl = vegalite_version()
    keep = {f"{f.id}.png" for f in figures}
    for f in figures:
        write_bytes_atomic(folder / f"{f.id}.png",
                           vlc.vegalite_to_png(f.spec, vl_version=vl, scale=scale))
    for stale in folder.glob("*.png"):
        if stale.name not in keep:
            stale.unlink()
