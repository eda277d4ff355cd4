"""Write the hard-sample gallery: one PNG grid, an HTML page with a row per clip, and the CSV.

This is the output end of the hard-sample analysis (it calls the renderers;
``hard_samples`` itself only computes), so a notebook can use the rankings
without writing files, and the command line writes everything at once.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..render.figures import ClipPanel, gallery_figure
from ..render.style import save_figure
from .hard_samples import ExplainedSample, HardSamples


@dataclass(frozen=True)
class GalleryFiles:
    grid_png: Path
    grid_pdf: Path
    html: Path
    csv: Path
    rows: list[Path]


def sample_panel(sample: ExplainedSample) -> ClipPanel:
    return ClipPanel(sample.title, sample.frames, sample.explanations)


def write_gallery(samples: Sequence[ExplainedSample], hard: HardSamples, out_dir: str | Path,
                  title: str = "Hard samples") -> GalleryFiles:
    """``gallery.png``/``.pdf`` (all samples), ``rows/NN.png`` (one per sample), ``index.html``, ``hard_samples.csv``."""
    if not samples:
        raise ValueError("no hard samples to show")
    out = Path(out_dir)
    grid_png, grid_pdf = save_figure(gallery_figure([sample_panel(s) for s in samples]), out, "gallery")
    rows = []
    for i, sample in enumerate(samples):
        rows += save_figure(gallery_figure([sample_panel(sample)]), out / "rows", f"{i:02d}", formats=("png",))
    csv_path = hard.to_csv(out / "hard_samples.csv")
    page = _html_page(samples, hard, [p.relative_to(out) for p in rows], title)
    html_path = out / "index.html"
    html_path.write_text(page, encoding="utf-8")
    return GalleryFiles(grid_png, grid_pdf, html_path, csv_path, rows)


def _html_page(samples: Sequence[ExplainedSample], hard: HardSamples, images: Sequence[Path], title: str) -> str:
    """A self-contained page (images referenced relatively): open it from the folder, or serve the folder."""
    s = hard.summary()
    lines = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}"
        "img{max-width:720px}.fake{color:#b2182b}.real{color:#2166ac}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{s['clips']} clips, threshold {s['threshold']:.2f}: {s['false_positives']} false positives, "
        f"{s['false_negatives']} false negatives. Each row shows the frame the first method ranks highest, "
        "its heatmap under each method and the frame-importance curves. "
        '<a href="hard_samples.csv">CSV</a>, <a href="gallery.png">whole grid</a>.</p>',
        "<table><tr><th>#</th><th>clip</th><th>truth</th><th>fake prob.</th><th>loss</th><th>why listed</th>"
        "<th>explanations</th></tr>",
    ]
    for i, (sample, image) in enumerate(zip(samples, images, strict=True)):
        sc = sample.score
        truth = "fake" if sc.label == 1 else "real"
        lines.append(
            f"<tr><td>{i + 1}</td><td>{html.escape(sc.id)}<br><small>{html.escape(sc.video)}</small></td>"
            f'<td class="{truth}">{truth}</td><td>{sc.probability:.3f}</td><td>{sc.loss:.3f}</td>'
            f"<td>{html.escape(', '.join(r.replace('_', ' ') for r in sample.reasons))}</td>"
            f'<td><img src="{html.escape(image.as_posix())}" alt="explanations of {html.escape(sc.id)}"></td></tr>')
    lines += ["</table>", "</body></html>", ""]
    return "\n".join(lines)
