"""One look for every paper figure, and saving that gives the same file for the same figure.

Print-ready by construction: IEEE column widths (``COLUMN_WIDTH``, ``PAGE_WIDTH``), no text under
``MIN_FONT`` points (``save_figure`` raises any smaller text, even in figures drawn elsewhere), PNG at
``DPI`` and vector PDF.  The colour maps are the display convention's (``render.overlay``, docs/display.md).

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

from ..attribution.registry import method_facts
from ..data._files import atomic_write, write_atomic
from .overlay import DIVERGING_CMAP, HEATMAP_CMAP  # noqa: F401  (one convention: video and figures)

PALETTE = "colorblind"
DPI = 300  # print resolution of the PNGs (the PDFs are vector)
PNG_COLOURS = None  # full RGB: a 256-colour palette banded the colour bars
# IEEE two-column layout, in inches: one column, and the full text width.
COLUMN_WIDTH = 3.5
PAGE_WIDTH = 7.16
MIN_FONT = 7.0  # points: the smallest text any figure may carry

_RC = {
    "savefig.dpi": DPI,
    "figure.dpi": 100,  # on screen (notebooks): light; the files get DPI
    "savefig.bbox": None,  # the figure's own size: exactly a column or the page wide
    "pdf.fonttype": 42,  # editable text in the PDF
    "svg.hashsalt": "istvt-explain",
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "font.size": 7,
    "figure.titlesize": 8,
    "lines.linewidth": 1.2,
    "lines.markersize": 3,
}


@contextmanager
def figure_style() -> Iterator[None]:
    """Seaborn's paper theme with our palette, only for the figures drawn inside the block."""
    with mpl.rc_context():
        sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, rc=_RC)
        yield


def tidy_ticks(fig: Figure, bins: int = 3) -> None:
    """At most ``bins`` + 1 x ticks per panel, in compact notation (2e-04, not 0.0002): narrow panels
    of tiny values (figures drawn elsewhere, like the judging gains) otherwise print overlapping labels."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.get_xticks().size:
            continue
        ax.xaxis.set_major_locator(MaxNLocator(bins, min_n_ticks=2))
        low, high = ax.get_xlim()
        span = max(abs(low), abs(high))
        if 0 < span < 0.01 or span >= 1e4:
            ax.xaxis.set_major_formatter(FormatStrFormatter("%.0e"))
    if fig.get_layout_engine() is None:
        fig.tight_layout()


def snap_width(natural: float) -> float:
    """The IEEE width a figure of ``natural`` inches gets: one column when it (nearly) fits, else the page."""
    return COLUMN_WIDTH if natural <= COLUMN_WIDTH * 1.15 else PAGE_WIDTH


def method_label(name: str) -> str:
    """A method's name as figures print it: short enough for a row label (``MethodFacts.short_label``)."""
    return method_facts(name).short_label


def raise_small_text(fig: Figure, minimum: float = MIN_FONT) -> None:
    """Raise every text of ``fig`` below ``minimum`` points to it (tick labels, annotations, titles)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        if text.get_fontsize() < minimum:
            text.set_fontsize(minimum)


def text_problems(fig: Figure) -> list[str]:
    """Visible texts that overlap each other or leave the figure, as "a / b" descriptions (empty: print-ready).

    Drawn as the files are (the figure's own size, no tight cropping), so it sees what the reader sees.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    undrawn = set()  # labels of ticks outside the view limits exist but are never drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            drawn = {id(t) for t in axis._update_ticks()}
            undrawn |= {id(label) for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                        if id(tick) not in drawn for label in (tick.label1, tick.label2)}
    texts = [t for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    page = fig.bbox
    problems = []
    for i, (a, box_a) in enumerate(boxes):
        if box_a.x0 < page.x0 - 1 or box_a.x1 > page.x1 + 1 or box_a.y0 < page.y0 - 1 or box_a.y1 > page.y1 + 1:
            problems.append(f"{a.get_text()!r} leaves the figure")
        for b, box_b in boxes[i + 1:]:
            inter = box_a.intersection(box_a, box_b)
            if inter is not None and inter.width > 1 and inter.height > 1:
                problems.append(f"{a.get_text()!r} / {b.get_text()!r}")
    return problems


def add_colorbar(fig: Figure, axes, signed: bool, label: str, cmap: str | None = None,
                 ends: Sequence[str] | None = None, **kwargs):
    """A colour bar of the display convention next to ``axes``: 0 to 1 (low to high evidence), or -1 to 1
    centred on 0 for signed maps; the ends say what they mean rather than raw numbers, which differ by
    orders of magnitude between methods (docs/display.md)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap = cmap or (DIVERGING_CMAP if signed else HEATMAP_CMAP)
    mappable = ScalarMappable(Normalize(-1.0 if signed else 0.0, 1.0), cmap)
    bar = fig.colorbar(mappable, ax=axes, label=label, **kwargs)
    if signed:
        bar.set_ticks([-1, 0, 1], labels=list(ends or ("against", "0", "for fake")))
    else:
        bar.set_ticks([0, 1], labels=list(ends or ("low", "high (p99)")))
    bar.ax.tick_params(labelsize=MIN_FONT)
    return bar


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per method so that the same method looks the same in every figure."""
    return dict(zip(methods, sns.color_palette(PALETTE, n_colors=max(len(methods), 1)), strict=False))


def save_figure(fig: Figure, out_dir: str | Path, name: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``name.png`` / ``name.pdf`` into ``out_dir`` without timestamps, each under a temporary
    name first (an interrupted run leaves no half-written figure).

    Figures here are bare ``matplotlib.figure.Figure`` objects, never registered
    with pyplot: nothing to close, no backend to choose, and a notebook still shows them.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raise_small_text(fig)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        if fmt == "png":
            write_atomic(path, figure_png(fig))
        else:
            metadata = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None} if fmt == "pdf" else None
            atomic_write(path, lambda tmp, fmt=fmt, metadata=metadata: fig.savefig(tmp, format=fmt, dpi=DPI,
                                                                                   metadata=metadata))
        paths.append(path)
    return paths


def figure_png(fig: Figure, dpi: int = DPI, colours: int | None = PNG_COLOURS) -> bytes:
    """PNG bytes of ``fig`` without metadata but with its DPI (print size), in RGB or a ``colours`` palette."""
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    image = Image.open(BytesIO(buf.getvalue())).convert("RGB")  # no alpha channel: a quarter smaller
    if colours is not None:
        image = image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = BytesIO()
    image.save(out, format="png", optimize=True, dpi=(dpi, dpi))
    return out.getvalue()
