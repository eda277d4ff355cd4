"""The judging result as CSV, Markdown, JSON and figures (docs/judging.md).

* ``explanation_judging.csv``: one row per method, every interval as mean, low and high, the verdicts;
* ``explanation_judging.md``: the verdict table, the gains with their 95 % intervals, the notes;
* ``explanation_judging.png/.pdf``: each gain over the random reference with its interval, per method;
* ``explanation_sanity.png/.pdf``: similarity to the original maps against the stages randomised.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ...render.style import PAGE_WIDTH, figure_style, method_colors, save_figure
from ..statistics import Interval
from .judge import CRITERIA, JudgingResult
from .sanity import SANITY_THRESHOLD


def gain_panels(result: JudgingResult) -> list[tuple[str, str]]:
    """(column, title) of every gain the verdicts rest on, in the order of the figure."""
    s = result.settings
    panels = [(f"deletion_gain_{r}", f"Deletion gain, {r}") for r in s.token_removals]
    panels += [(f"insertion_gain_{r}", f"Insertion gain, {r}") for r in s.token_removals]
    panels += [(f"temporal_gain_{r}", f"Top-{s.top_k} frame drop gain, {r}") for r in s.frame_removals]
    if result.table and "pointing_gain_correct" in result.table[0]:
        panels.append(("pointing_gain_correct", "Pointing game over chance"))
    return panels


def write_csv(result: JudgingResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = result.rows
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def write_json(result: JudgingResult, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    sanity = {m: {"cascading": [vars(s) for s in r.cascading], "independent": [vars(s) for s in r.independent],
                  "threshold": r.threshold} for m, r in result.sanity.items()}
    payload = {**(extra or {}), "clips": result.clips, "manipulated": result.manipulated,
               "verdicts": result.verdicts, "notes": result.notes, "frame_spread": result.frame_spread,
               "removal_effect": result.removal_effect, "rows": result.rows, "sanity": sanity}
    path.write_text(json.dumps(payload, indent=1, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    return value.__dict__ if isinstance(value, Interval) else str(value)


def to_markdown(result: JudgingResult) -> str:
    """Verdicts first, then the numbers behind them (mean [95 % interval]) and the notes."""
    lines = [f"{result.clips} clips ({result.manipulated} manipulated). Verdicts: pass / fail / n/a "
             "(a gain counts only when its 95 % bootstrap interval excludes 0).", "",
             "| method | clips | " + " | ".join(CRITERIA) + " |", "|---|---|" + "---|" * len(CRITERIA)]
    for row in result.table:
        v = result.verdicts[row["method"]]
        lines.append(f"| {row['method']} | {row['clips']} | " + " | ".join(v[c] for c in CRITERIA) + " |")
    panels = gain_panels(result)
    lines += ["", "| method | " + " | ".join(t for _, t in panels) + " | sanity abs Spearman | sanity SSIM |",
              "|---|" + "---|" * (len(panels) + 2)]
    for row in result.table:
        cells = [row[c].text() if isinstance(row.get(c), Interval) else "n/a" for c, _ in panels]
        cells += [_number(row.get("sanity_spearman")), _number(row.get("sanity_ssim"))]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    if result.notes:
        lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def gains_figure(result: JudgingResult) -> Figure:
    """One panel per gain: a dot per method with its 95 % interval; 0 (random or chance) dashed."""
    panels = gain_panels(result)
    names = [row["method"] for row in result.table]
    colours = method_colors(names)
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, 0.35 * len(names) * rows + 0.6 * rows + 0.3))
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        axes.flat[0].invert_yaxis()  # shared: the first method on top in every panel
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (column, title) in zip(axes.flat, panels, strict=False):
            for y, row in enumerate(result.table):
                value = row.get(column)
                if not isinstance(value, Interval) or value.n == 0:
                    ax.text(0, y, "n/a", fontsize=6, va="center", ha="center", color="0.4")
                    continue
                low = value.low if math.isfinite(value.low) else value.mean
                high = value.high if math.isfinite(value.high) else value.mean
                ax.errorbar(value.mean, y, xerr=[[value.mean - low], [high - value.mean]], fmt="o",
                            color=colours[row["method"]], capsize=2)
            ax.axvline(0, color="0.3", linestyle="--", linewidth=0.8)
            ax.set_title(title, fontsize=7)
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels(names)
            ax.tick_params(axis="x", labelsize=6)
        fig.suptitle(f"Gain over the random reference, mean and 95 % interval ({result.clips} clips, "
                     f"{result.model_name or 'model'})", fontsize=8)
        fig.tight_layout()
    return fig


def sanity_figure(result: JudgingResult) -> Figure:
    """Adebayo's cascading curves: similarity with the original maps as stages are randomised."""
    names = list(result.sanity)
    colours = method_colors([row["method"] for row in result.table])
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, 2.4))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, key, title in zip(axes, ("spearman", "ssim"), ("|Spearman|", "SSIM"), strict=True):
            for name in names:
                steps = result.sanity[name].cascading
                ax.plot(range(len(steps)), [getattr(s, key) for s in steps], marker="o", label=name,
                        color=colours.get(name))
            stages = [s.stage for s in result.sanity[names[0]].cascading] if names else []
            ax.axhline(SANITY_THRESHOLD, color="0.3", linestyle="--", linewidth=0.8, label="pass threshold")
            ax.set_xticks(range(len(stages)))
            ax.set_xticklabels(stages, rotation=45, ha="right")
            ax.set_title(f"{title} with the original map (cascading randomisation)", fontsize=7)
            lowest = min((getattr(s, key) for n in names for s in result.sanity[n].cascading), default=0.0)
            ax.set_ylim(min(-0.05, lowest - 0.05), 1.05)  # SSIM can fall below 0
        axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=6)
        fig.tight_layout()
    return fig


def write_report(result: JudgingResult, out_dir: str | Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """Every file of the module doc into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(result, out / "explanation_judging.csv"), write_json(result, out / "explanation_judging.json",
                                                                            extra)]
    md = out / "explanation_judging.md"
    md.write_text(to_markdown(result) + "\n")
    paths.append(md)
    paths += save_figure(gains_figure(result), out, "explanation_judging")
    if result.sanity:
        paths += save_figure(sanity_figure(result), out, "explanation_sanity")
    return paths

