"""The judging table as CSV, Markdown and a figure (one panel per measure, methods side by side)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from .judging import COLUMNS, JudgingTable

# (column, panel title, reference drawn as a dashed line: a column, a number or None; which way is better)
PANELS = (
    ("deletion_auc", "Deletion AUC", "random_deletion_auc", "lower"),
    ("insertion_auc", "Insertion AUC", "random_insertion_auc", "higher"),
    ("drop_top_k", "Prob. drop, top-k frames", "drop_random_k", "higher"),
    ("pointing_game", "Pointing game", None, "higher"),
    ("mass_inside", "Mass inside mask", "mass_chance", "higher"),
    ("pixel_auc", "Pixel AUC vs mask", 0.5, "higher"),
    ("sanity_rank_corr", "Rank corr. after weight randomisation", None, "lower"),
)


def write_csv(table: JudgingTable, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        writer.writeheader()
        for row in table.rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def to_markdown(table: JudgingTable) -> str:
    cols = [c for c in COLUMNS if c != "label"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.rows:
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_table(table: JudgingTable, path: str | Path) -> Path:
    """Bar charts of every measure, one bar per method; dashed line: the random / chance reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [row["method"] for row in table.rows]
    cols = 4
    rows = math.ceil(len(PANELS) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(PANELS):]:
        ax.axis("off")
    for ax, (column, title, reference, better) in zip(axes.flat, PANELS, strict=False):
        values = [row[column] for row in table.rows]
        ax.bar(range(len(names)), [0 if math.isnan(v) else v for v in values], color="tab:blue")
        if isinstance(reference, str):
            refs = [row[reference] for row in table.rows if not math.isnan(row[reference])]
            level = sum(refs) / len(refs) if refs else None
        else:
            level = reference
        if level is not None:
            label = "random" if isinstance(reference, str) and "random" in reference else "chance"
            ax.axhline(level, color="tab:red", linestyle="--", linewidth=1, label=label)
            ax.legend(fontsize=7)
        ax.set_title(f"{title}\n({better} is better)", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=70, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(f"Explanation judging ({table.model_name or 'model'}, {table.rows[0]['clips']} pseudo-fake clips)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
