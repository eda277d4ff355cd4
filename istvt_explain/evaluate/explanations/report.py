"""The judging result as CSV, Markdown, JSON and figures (docs/judging.md).

* ``explanation_judging.csv``: one row per method, every interval as mean, low, high and p, the verdicts;
* ``explanation_judging.md``: the verdict table, the margins each verdict rests on (mean over people
  [95 % interval], and whether it survived the Holm correction), method-against-method contrasts, notes;
* ``explanation_judging.png/.pdf``: every margin with its interval, per method and criterion;
* ``explanation_sanity.png/.pdf``: similarity to the original maps against the stages randomised;
* ``explanation_contrasts.csv``: every paired method-against-method interval.
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
from .criteria import JUDGED
from .judge import JudgingResult, verdict_margins
from .sanity import SANITY_THRESHOLD


def margin_panels(result: JudgingResult) -> list[tuple[str, str]]:
    """(column, title) of every margin some verdict rests on, in the order of the figure."""
    seen: dict[str, str] = {}
    for row in result.table:
        for criterion in JUDGED:
            for key in verdict_margins(result, row["method"], criterion):
                seen.setdefault(f"{criterion}_margin_{key}", f"{criterion}: {key.replace('_', ' ')}")
    return list(seen.items())


def write_csv(result: JudgingResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = result.rows
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def write_contrasts(result: JudgingResult, path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["first", "second", "criterion", "margin", "difference", "low", "high", "people"])
        for c in result.contrasts:
            d = c["difference"]
            writer.writerow([c["first"], c["second"], c["criterion"], c["margin"], f"{d.mean:.6g}", f"{d.low:.6g}",
                             f"{d.high:.6g}", d.groups])
    return path


def write_json(result: JudgingResult, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    sanity = {m: {"cascading": [vars(s) for s in r.cascading], "independent": [vars(s) for s in r.independent],
                  "threshold": r.threshold} for m, r in result.sanity.items()}
    from dataclasses import asdict

    # the run's settings first (``read_json`` needs them); a caller's ``extra`` may add to them
    payload = {"settings": asdict(result.settings), **(extra or {}), "clips": result.clips, "manipulated": result.manipulated,
               "identities": result.identities, "family": result.family, "alpha": result.settings.alpha,
               "verdicts": result.verdicts, "fools": list(result.fools), "notes": result.notes, "rows": result.rows,
               "sanity": sanity, "contrasts": result.contrasts, "removal_effects": result.removal_effects}
    path.write_text(json.dumps(payload, indent=1, default=_plain) + "\n")
    return path


def _plain(value: Any) -> Any:
    return value.__dict__ if isinstance(value, Interval) else str(value)


def _people(count: int) -> str:
    return "1 person" if count == 1 else f"{count} people"


def to_markdown(result: JudgingResult, contrasts: int = 12) -> str:
    """Verdicts first, then the margins behind them, the clearest contrasts and the notes."""
    s = result.settings
    lines = [f"{result.clips} clips of {_people(result.identities)} ({result.manipulated} manipulated). Verdicts: "
             f"pass / fail / n/a. A verdict passes when every margin it rests on is above 0 over people (the "
             f"bootstrap resamples people), after Holm's correction over the run's {result.family} margins "
             f"(family-wise error rate {s.alpha:g}). Deletion and insertion are judged per explained class.", "",
             "| method | clips | " + " | ".join(JUDGED) + " |", "|---|---|" + "---|" * len(JUDGED)]
    for row in result.table:
        v = result.verdicts[row["method"]]
        name = f"{row['method']} (control)" if row.get("fool") else row["method"]
        lines.append(f"| {name} | {row['clips']} | " + " | ".join(v[c] for c in JUDGED) + " |")
    lines += ["", "Margins (mean over people [95 % interval]; * survived the Holm correction):", "",
              "| method | criterion | margin | value |", "|---|---|---|---|"]
    for row in result.table:
        for criterion in JUDGED:
            for key, interval in verdict_margins(result, row["method"], criterion).items():
                star = "*" if row.get(f"holm_{criterion}_{key}") else ""
                lines.append(f"| {row['method']} | {criterion} | {key} | {interval.text()}{star} |")
    if result.removal_effects:
        lines += ["", "Whole-clip effect of each token removal on the explained class's probability (every token "
                  "removed, minus the clip; mean over people [95 % interval]). A removal judges a class only where "
                  "this lies below 0; the verdicts use " + ", ".join(s.token_removals) + ":", "",
                  "| removal | clips explained as fake | clips explained as real |", "|---|---|---|"]
        for removal, by_class in result.removal_effects.items():
            cells = [by_class[c].text() if c in by_class else "n/a" for c in ("fake", "real")]
            lines.append(f"| {removal} | " + " | ".join(cells) + " |")
    clear = sorted((c for c in result.contrasts if c["difference"].excludes(0.0)),
                   key=lambda c: -abs(c["difference"].mean))[:contrasts]
    if clear:
        lines += ["", f"Method against method (paired, first minus second; the {len(clear)} largest differences "
                  "whose interval excludes 0, uncorrected; all in explanation_contrasts.csv):", "",
                  "| first | second | criterion | margin | difference |", "|---|---|---|---|---|"]
        lines += [f"| {c['first']} | {c['second']} | {c['criterion']} | {c['margin']} | {c['difference'].text()} |"
                  for c in clear]
    if result.notes:
        lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def gains_figure(result: JudgingResult) -> Figure:
    """One panel per margin: a dot per method with its 95 % interval over people; 0 dashed."""
    panels = margin_panels(result)
    names = [row["method"] for row in result.table]
    colours = method_colors(names)
    cols = min(4, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, 0.3 * len(names) * rows + 0.7 * rows + 0.3))
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        axes.flat[0].invert_yaxis()  # shared: the first method on top in every panel
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (column, title) in zip(axes.flat, panels, strict=False):
            for y, row in enumerate(result.table):
                value = row.get(column)
                if not isinstance(value, Interval) or value.n == 0 or math.isnan(value.mean):
                    ax.text(0, y, "n/a", fontsize=6, va="center", ha="center", color="0.4")
                    continue
                low = value.low if math.isfinite(value.low) else value.mean
                high = value.high if math.isfinite(value.high) else value.mean
                ax.errorbar(value.mean, y, xerr=[[value.mean - low], [high - value.mean]], fmt="o",
                            color=colours[row["method"]], capsize=2, markersize=3)
            ax.axvline(0, color="0.3", linestyle="--", linewidth=0.8)
            ax.set_title(title, fontsize=7)
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels(names)
            ax.tick_params(axis="x", labelsize=6)
        fig.suptitle(f"Margins of the verdicts, mean over people and 95 % interval ({result.clips} clips, "
                     f"{_people(result.identities)}, {result.model_name or 'model'}); a pass needs every margin "
                     "above 0", fontsize=8)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the title above the panels
    return fig


def sanity_figure(result: JudgingResult) -> Figure:
    """Adebayo's cascading curves: similarity with the original maps as stages are randomised."""
    names = list(result.sanity)
    colours = method_colors([row["method"] for row in result.table])
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, 2.4))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, key, title in zip(axes, ("spearman", "ssim"), ("|Spearman|", "SSIM"), strict=True):
            # every stage of the longest cascade; a method that randomised every stage at once has its one
            # point at the last stage
            stages = max(([s.stage for s in result.sanity[n].cascading] for n in names), key=len, default=[])
            for name in names:
                steps = result.sanity[name].cascading
                control = name in result.fools  # dotted with crosses: the palette repeats after ten methods
                ax.plot([stages.index(s.stage) for s in steps], [getattr(s, key) for s in steps],
                        marker="x" if control else "o", linestyle=":" if control else "-", label=name,
                        color=colours.get(name), markersize=3)
            ax.axhline(SANITY_THRESHOLD, color="0.3", linestyle="--", linewidth=0.8, label="pass threshold")
            ax.set_xticks(range(len(stages)))
            ax.set_xticklabels(stages, rotation=45, ha="right")
            ax.set_title(f"{title} with the original map (cascading randomisation)", fontsize=7)
            lowest = min((getattr(s, key) for n in names for s in result.sanity[n].cascading
                          if not math.isnan(getattr(s, key))), default=0.0)
            ax.set_ylim(min(-0.05, lowest - 0.05), 1.05)  # SSIM can fall below 0
        axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=6)
        fig.tight_layout()
    return fig


def write_report(result: JudgingResult, out_dir: str | Path, extra: dict[str, Any] | None = None) -> list[Path]:
    """Every file of the module doc into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(result, out / "explanation_judging.csv"),
             write_json(result, out / "explanation_judging.json", extra),
             write_contrasts(result, out / "explanation_contrasts.csv")]
    md = out / "explanation_judging.md"
    md.write_text(to_markdown(result) + "\n")
    paths.append(md)
    paths += save_figure(gains_figure(result), out, "explanation_judging")
    if result.sanity:
        paths += save_figure(sanity_figure(result), out, "explanation_sanity")
    return paths


def read_json(path: str | Path) -> JudgingResult:
    """A run's ``explanation_judging.json`` back as a ``JudgingResult``: enough to redraw its figures and
    tables (``write_report``) without judging again, which takes an hour on two CPU cores.  The intervals
    come back with their mean, bounds and p-value; their clip counts as the method's clips."""
    from dataclasses import fields

    from .sanity import SanityResult, SanityStep
    from .settings import JudgingSettings

    data = json.loads(Path(path).read_text())
    table = []
    for flat in data["rows"]:
        row: dict[str, Any] = {}
        for key, value in flat.items():
            if key.startswith("verdict_") or key.endswith(("_low", "_high", "_p")) and key.rsplit("_", 1)[0] in flat:
                continue
            if f"{key}_low" in flat:
                mean = math.nan if value is None else float(value)
                row[key] = Interval(mean, _number(flat[f"{key}_low"]), _number(flat[f"{key}_high"]),
                                    0 if math.isnan(mean) else int(flat["clips"]), p_above=_number(flat[f"{key}_p"]))
            else:
                row[key] = value
        table.append(row)
    known = {f.name for f in fields(JudgingSettings)}
    settings = JudgingSettings(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.get("settings", {}).items() if k in known})
    sanity = {m: SanityResult([SanityStep(**s) for s in r["cascading"]], [SanityStep(**s) for s in r["independent"]],
                              r["threshold"]) for m, r in data["sanity"].items()}
    contrasts = [{**c, "difference": Interval(**c["difference"])} for c in data["contrasts"]]
    effects = {removal: {klass: Interval(**i) for klass, i in by_class.items()}
               for removal, by_class in data["removal_effects"].items()}
    return JudgingResult(data["verdicts"], table, sanity, data["notes"], settings,
                         model_name=data.get("model", {}).get("name", ""), clips=data["clips"],
                         manipulated=data["manipulated"], identities=data["identities"], contrasts=contrasts,
                         family=data["family"], removal_effects=effects, fools=tuple(data["fools"]))


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
