"""ROC curves as a figure: one line per curve (clip level, video level, each manipulation)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np


def plot_roc(curves: Mapping[str, tuple[Iterable[float], Iterable[float]]], path: str | Path,
             title: str = "ROC") -> Path:
    """Draw ``{name: (labels, scores)}`` as ROC curves with their AUC in the legend; write ``path``.

    Curves with only one class are left out (they have no ROC).  Takes scores, not a model.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns
    from sklearn.metrics import roc_auc_score, roc_curve

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    palette = sns.color_palette("colorblind", max(len(curves), 1))
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=120)
        try:
            for colour, (name, (labels, scores)) in zip(palette, curves.items(), strict=False):
                y = np.asarray(list(labels), dtype=np.float64) >= 0.5
                s = np.asarray(list(scores), dtype=np.float64)
                if y.all() or not y.any():
                    continue
                fpr, tpr, _ = roc_curve(y, s)
                ax.plot(fpr, tpr, color=colour, lw=1.8, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
            ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="chance")
            ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate",
                   title=title)
            ax.legend(loc="lower right", fontsize=8, frameon=True)
            fig.tight_layout()
            fig.savefig(path)
        finally:
            plt.close(fig)
    return path
