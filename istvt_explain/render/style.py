"""One look for every paper figure, and saving that gives the same file for the same figure.

Figures are compared with the committed ones, so saving strips what changes
from run to run (PDF creation dates, the matplotlib version stamp) and fixes
the hash salt matplotlib uses for element ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import matplotlib as mpl
import seaborn as sns
from matplotlib.figure import Figure
from PIL import Image

PALETTE = "colorblind"
HEATMAP_CMAP = "inferno"
DIVERGING_CMAP = "vlag"
DPI = 100
PNG_COLOURS = 256  # PNGs are saved with a palette: a third of the size, no visible loss at figure scale
# Single-column width of a two-column paper, in inches.
COLUMN_WIDTH = 3.5
PAGE_WIDTH = 7.2

_RC = {
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "pdf.fonttype": 42,  # editable text in the PDF
    "svg.hashsalt": "istvt-explain",
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "legend.title_fontsize": 6,
    "font.size": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
}


@contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's paper theme with our palette, only for the figures drawn inside the block."""
    with mpl.rc_context():
        sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, rc=_RC)
        yield


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per method so that the same method looks the same in every figure."""
    return dict(zip(methods, sns.color_palette(PALETTE, n_colors=max(len(methods), 1)), strict=False))


def save_figure(fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``name.png`` / ``name.pdf`` into ``out_dir`` without timestamps.

    Figures here are bare ``matplotlib.figure.Figure`` objects, never registered
    with pyplot: nothing to close, no backend to choose, and a notebook still shows them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        if fmt == "png":
            path.write_bytes(figure_png(fig))
        else:
            metadata = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
            fig.savefig(path, format=fmt, metadata=metadata if fmt == "pdf" else None, dpi=DPI,
                        bbox_inches="tight", pad_inches=0.03)
        paths.append(path)
    return paths


def figure_png(fig: Figure, dpi: int = DPI, colours: int | None = PNG_COLOURS) -> bytes:
    """PNG bytes of ``fig`` without metadata, reduced to a ``colours`` palette (None: full RGB)."""
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.03, metadata={"Software": None})
    if colours is None:
        return buf.getvalue()
    image = Image.open(BytesIO(buf.getvalue())).convert("RGB")
    quantized = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = BytesIO()
    quantized.save(out, format="png", optimize=True)
    return out.getvalue()
