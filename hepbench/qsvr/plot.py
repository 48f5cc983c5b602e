"""The study's R² distributions as a PNG: one box per model and scaling variant, published means marked."""

from __future__ import annotations

from pathlib import Path

# A bare Figure (Agg on save, no pyplot): no display needed, no global figure registry (see
# hepbench/mlpf/report/plot.py).
import numpy as np
from matplotlib.figure import Figure

from hepbench.core.files import atomic_open
from hepbench.qsvr.study import MODELS, VARIANTS, model_label, published_key

VARIANT_COLOURS = {"published": "C0", "leak-free": "C1"}


def plot_study(doc: dict, out: str | Path) -> Path:
    out = Path(out)
    p = doc["protocol"]
    convention = p["r2_convention"]
    fig = Figure(figsize=(8.5, 5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(VARIANTS)
    for j, variant in enumerate(VARIANTS):
        data = [doc["results"][variant][convention][m]["r2"] for m in MODELS]
        positions = [i + (j - (len(VARIANTS) - 1) / 2) * width for i in range(len(MODELS))]
        colour = VARIANT_COLOURS[variant]
        ax.boxplot(
            data,
            positions=positions,
            widths=width * 0.9,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": colour, "alpha": 0.45, "edgecolor": colour},
            medianprops={"color": "black"},
            flierprops={"marker": ".", "markersize": 3, "alpha": 0.5},
        )
        ax.plot([], [], color=colour, linewidth=8, alpha=0.45, label=f"scaling {variant}")
    for i, model in enumerate(MODELS):
        pub = doc["published"]["rows"][published_key(model, p["sampler"])]
        ax.plot(
            [i - 0.45, i + 0.45],
            [pub["mean"]] * 2,
            color="red",
            linestyle="--",
            linewidth=1,
            label="published mean (swapped R²)" if i == 0 else None,
        )
    ax.set_xticks(range(len(MODELS)))
    ax.set_xticklabels(
        [
            f"{model_label(m, p['sampler'])}\n({doc['results'][VARIANTS[0]][convention][m]['stats']['count']} values)"
            for m in MODELS
        ]
    )
    # A few bad splits reach far below the rest: the axis shows the 1st percentile and up, so the
    # boxes stay readable; the values below are counted on the plot (the JSON has every value).
    values = [np.asarray(doc["results"][v][convention][m]["r2"]) for v in VARIANTS for m in MODELS]
    bottom = min(float(np.percentile(v, 1)) for v in values) - 0.03
    below = sum(int((v < bottom).sum()) for v in values)
    ax.set_ylim(bottom, 1.0)
    if below:
        ax.text(
            0.01,
            0.01,
            f"{below} value{'s' * (below != 1)} below the axis",
            transform=ax.transAxes,
            fontsize="small",
            color="0.3",
        )
    ax.set_ylabel(f"R² on the test curves ({convention} argument order, scaled loss_98)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(
        f"QSVR study: {p['train_size']} training curves, seed {p['seed']}, hepbench {doc['version']}", fontsize="medium"
    )
    with atomic_open(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    return out
