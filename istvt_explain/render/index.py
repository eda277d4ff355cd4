"""The HTML index of a scan: a card per video with its most suspicious frame, most suspicious first.

It reads rows, not the scan: anything with the attributes of ``IndexRow`` (the scan's ``ScanRow``).
Thumbnails and reports are linked by their paths relative to the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from ..data._files import write_atomic

THUMB_WIDTH = 320
"""Pixels: the width of a card and of the thumbnail the scan writes for it."""


class IndexRow(Protocol):
    """What a card shows of one video."""

    path: str
    verdict: str
    fake_probability: float | None
    segments: str  # "start-end;start-end"
    faces: int | None
    error: str
    report: str  # link, relative to the page
    thumb: str  # link, relative to the page
    peak: float  # the highest clip score: how the cards are sorted (errors last)


def write_index_page(path: str | Path, rows: Iterable[IndexRow]) -> Path:
    """Write ``path``: one card per video, the most suspicious first (highest clip score), errors last."""
    ordered = sorted(rows, key=lambda r: (-r.peak, r.path))
    cards = []
    for row in ordered:
        e = html.escape
        if row.error:
            body = f'<div class="noimg">no picture</div><p class="err">{e(row.error)}</p>'
        else:
            img = f'<img src="{e(row.thumb)}" loading="lazy" alt="most suspicious frame">' if row.thumb else ""
            seg = f"frames {e(row.segments.replace(';', ', '))}" if row.segments else "no manipulated segment"
            body = (f'{img}<p class="{e(row.verdict)}"><b>{e(row.verdict.upper())}</b> · peak clip '
                    f'{row.peak:.2f} · mean {row.fake_probability:.2f}</p><p>{seg} · {row.faces} face track(s)</p>')
        link = f'<a href="{e(row.report)}">report</a>' if row.report else ""
        cards.append(f'<div class="card"><p class="path" title="{e(row.path)}">{e(row.path)}</p>{body}'
                     f'<p class="small">{link}</p></div>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>istvt-explain scan</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #f6f6f6; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.card {{ background: white; padding: 8px; width: {THUMB_WIDTH}px; box-shadow: 0 1px 3px #0003; }}
.card img {{ width: {THUMB_WIDTH}px; display: block; }}
.card p {{ margin: 4px 0; font-size: 13px; }}
.path {{ font-family: monospace; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }}
.fake {{ color: #c62828; }} .real {{ color: #2e7d32; }} .err {{ color: #555; }} .small {{ font-size: 11px; }}
.noimg {{ height: 60px; background: #eee; color: #999; text-align: center; line-height: 60px; }}
</style></head><body>
<h1>istvt-explain scan: {len(ordered)} video(s)</h1>
<p>Most suspicious first (highest clip score). The picture is each video's most suspicious frame with
its heatmap; frames count from 0. Table: <a href="results.csv">results.csv</a>.</p>
<div class="grid">
{chr(10).join(cards)}
</div></body></html>
"""
    path = Path(path)
    write_atomic(path, page)
    return path

