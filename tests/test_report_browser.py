"""The report page in a real headless Chromium: it loads from a file:// URL with no console
errors or warnings and no network request, and every figure of every section renders.

Chromium is Debian's (``.ci/run`` installs it), driven by the ``playwright`` package pointed
at it; no browser is ever downloaded. The test skips only when no Chromium is installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from metamix.report import ReportOptions, build_report
from tests.test_report_fixtures import make_run

#: Flags that work in this sandbox: no GPU, no network chatter of Chromium's own.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium() -> str | None:
    for candidate in (os.environ.get("METAMIX_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; "
                    ".ci/run installs it)")
def test_page_renders_offline_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    run = make_run(tmp_path)
    result = build_report(run, options=ReportOptions(png=False, cache_dir=tmp_path),
                          console=Console(quiet=True))
    url = result.path.as_uri()
    expected = {s.id: [f.id for f in s.figures] for s in result.sections}
    n_figures = sum(len(v) for v in expected.values())
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            context.on("request", lambda r: requests.append(r.url))
            page.goto(url)
            page.wait_for_function("document.body.dataset.rendered !== undefined",
                                   timeout=120_000)
            rendered = int(page.get_attribute("body", "data-rendered"))
            per_section = page.evaluate("""() => Object.fromEntries(
                Array.from(document.querySelectorAll('section[data-section]')).map(s => [
                    s.dataset.section,
                    Array.from(s.querySelectorAll('[data-figure]')).map(d => [
                        d.id, d.querySelectorAll('svg.marks').length,
                        d.querySelectorAll('svg.marks g.role-mark > *').length])]))""")
        finally:
            context.close()
    assert problems == []
    assert requests == [url]  # the page itself, nothing else: no CDN, no fonts, no data
    assert rendered == n_figures == 21
    assert {s: [fid for fid, _, _ in figs] for s, figs in per_section.items()} == expected
    for figures in per_section.values():
        for fid, svgs, marks in figures:
            assert svgs == 1, f"{fid}: no chart"
            assert marks > 0, f"{fid}: chart drew no marks"
