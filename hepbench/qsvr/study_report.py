"""The study's results as a document: summary statistics, the JSON (schema-checked), the markdown table.

The JSON holds every R² value, so the table and the plot can be redrawn from it; the markdown puts
the published row under each of ours (docs/qubo.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hepbench import __version__
from hepbench.core.files import atomic_open, write_json
from hepbench.core.hostinfo import package_versions
from hepbench.core.schema import validate_report
from hepbench.qsvr.curves import STUDY_EPOCHS, STUDY_TARGET
from hepbench.qsvr.model import DEFAULT_RULE
from hepbench.qsvr.scoring import CONVENTIONS, STD_DEFINITION, summary
from hepbench.qsvr.study import MODELS, SVR_SETTINGS, VARIANTS, Protocol, model_label, published_key

SCHEMA = "qsvr_study.schema.json"
JSON_FILE, MARKDOWN_FILE, PNG_FILE = "qsvr_study.json", "qsvr_study.md", "qsvr_study.png"
BAKER_PNG = "qsvr_baker.png"
DOCUMENT_INDENT = 1  # the document holds every R² value: one space per level keeps it small
R2_TARGET = (
    "R² of the predicted against the true loss_98 of the test curves, both on the "
    "QuantileTransformer-scaled axis (as the study did), not in loss units"
)
POOLING = (
    "qsvr: the R² of all seven combination rules of every fit, pooled rule by rule (the poster's "
    "Sim-QSVR row, 700 values for 100 fits); qsvr_ensemble: the rule of the `combine` parameter"
)
VARIANT_TEXT = {
    "published": "scalers fitted on all curves before splitting (the study's leak)",
    "leak-free": "scalers fitted on each repeat's training curves only (ensemble: its 80 curves)",
}
# The published table (Wulff et al., ACAT 2022; QMI 6, 59 (2024)); R² computed with swapped arguments.
PUBLISHED = {
    "svr": {"label": "SVR", "best": 0.959, "worst": 0.318, "mean": 0.889, "std": 0.050, "trainings": 1000},
    "sim_qsvr": {
        "label": "Sim-QSVR (simulated annealing)",
        "best": 0.949,
        "worst": 0.383,
        "mean": 0.901,
        "std": 0.045,
        "trainings": 100,
    },
    "qsvr_dwave": {
        "label": "QSVR (D-Wave Advantage)",
        "best": 0.948,
        "worst": 0.742,
        "mean": 0.880,
        "std": 0.056,
        "trainings": 10,
    },
    "qsvr_ensemble": {
        "label": "QSVR ensemble",
        "best": 0.927,
        "worst": 0.857,
        "mean": 0.899,
        "std": 0.019,
        "trainings": 10,
    },
}
PUBLISHED_SOURCE = "Wulff et al., arXiv:2303.15053 (ACAT 2022); Quantum Mach. Intell. 6, 59 (2024)"


def _model_results(model: str, scores: dict, convention: str, combine: str, repeats: int) -> dict:
    """stats (+ per-rule stats) and the values, for one model, variant and convention."""
    if model == "svr":
        values = scores[convention]
        return {"stats": {**summary(values), "trainings": repeats}, "r2": values}
    rules = {rule: summary(per[convention]) for rule, per in scores.items()}
    if model == "qsvr":
        values = [v for per in scores.values() for v in per[convention]]  # rule-major
    else:
        values = scores[combine][convention]
    return {"stats": {**summary(values), "trainings": repeats}, "rules": rules, "r2": values}


def software() -> dict:
    """The software block of the study document and of the qsvr-bmk summary."""
    return package_versions(__version__, ("numpy", "scikit-learn", "dimod", "dwave-samplers", "matplotlib"))


def data_info(curves, X, path) -> dict:
    return {
        "source": str(curves.source),
        "sha256": hashlib.sha256(Path(curves.source).read_bytes()).hexdigest(),
        "runs": len(curves),
        "curves": int(X.shape[0]),
        "features": int(X.shape[1]),
        "feature_epochs": list(STUDY_EPOCHS),
        "target": f"loss_{STUDY_TARGET}",
        "packaged": path is None,
    }


def build_document(
    run: dict, protocol: Protocol, data: dict, timing: dict, command: list[str], host: dict, baker: dict | None = None
) -> dict:
    combine = protocol.qsvr.get("combine", DEFAULT_RULE)
    results = {
        variant: {
            convention: {
                model: _model_results(model, run["r2"][variant][model], convention, combine, protocol.repeats(model))
                for model in MODELS
            }
            for convention in CONVENTIONS
        }
        for variant in VARIANTS
    }
    doc = {
        "kind": "hepbench-qsvr-study",
        "version": __version__,
        "command": command,
        "data": data,
        "protocol": {
            "svr_repeats": protocol.svr_repeats,
            "qsvr_repeats": protocol.qsvr_repeats,
            "ensemble_repeats": protocol.ensemble_repeats,
            "seed": protocol.seed,
            "r2_convention": protocol.r2_convention,
            "test_size": protocol.test_size(data["curves"]),
            "train_size": protocol.train_size,
            "ensemble_chunks": protocol.ensemble_chunks,
            "ensemble_train_size": protocol.ensemble_size,
            "n_quantiles": protocol.n_quantiles,
            "sampler": protocol.sampler,
            "svr": dict(SVR_SETTINGS),
            "qsvr": {**protocol.qsvr, "combine": combine},
            "variants": dict(VARIANT_TEXT),
            "r2_target": R2_TARGET,
            "std": STD_DEFINITION,
            "pooling": POOLING,
        },
        "published": {"source": PUBLISHED_SOURCE, "r2_convention": "swapped", "rows": PUBLISHED},
        "results": results,
        "timing": {**timing, "models": {m: round(s, 3) for m, s in run["seconds"].items()}},
        "software": software(),
        "host": host,
    }
    if baker is not None:
        doc["baker"] = baker
    return doc


def _row(label: str, source: str, s: dict) -> str:
    return (
        f"| {label} | {source} | {s['best']:.3f} | {s['worst']:.3f} | {s['mean']:.3f} | {s['std']:.3f} "
        f"| {s['trainings']} |"
    )


def _table(doc: dict, variant: str, convention: str, with_published: bool) -> list[str]:
    p = doc["protocol"]
    lines = ["| model | source | best | worst | mean | std | trainings |", "|---|---|---|---|---|---|---|"]
    for model in MODELS:
        stats = doc["results"][variant][convention][model]["stats"]
        lines.append(_row(model_label(model, p["sampler"]), "this run", stats))
        if with_published:
            pub = doc["published"]["rows"][published_key(model, p["sampler"])]
            lines.append(_row(pub["label"], "published (swapped R²)", pub))
    return lines


def baker_table(result: dict) -> list[str]:
    """hepbench.qsvr.baker.evaluate's table as markdown (R² in loss units, correct order)."""
    s = result.get("settings", {})
    lines = [
        f"{s.get('repeats', '?')} splits, test size {s.get('test_size', '?')}, seed {s.get('seed', '?')}; "
        f"R²: {s.get('r2', 'r2_score(y_true, y_pred)')}.",
        "",
        "| fraction | epochs | features | R² mean | R² std | RMSE mean |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.get("table", []):
        lines.append(
            f"| {r['fraction']:g} | {r['epochs']} | {r['features']} | {r['r2_mean']:.3f} | {r['r2_std']:.3f} "
            f"| {r['rmse_mean']:.2f} |"
        )
    return lines


def markdown(doc: dict) -> str:
    p, d = doc["protocol"], doc["data"]
    headline = p["r2_convention"]
    other = next(c for c in CONVENTIONS if c != headline)
    order = {"correct": "r2_score(y_true, y_pred)", "swapped": "r2_score(y_pred, y_true), as published"}
    out = [
        "# QSVR study: R² of the final-loss prediction",
        "",
        f"Data: {d['curves']} curves of {d['source']} (sha256 {d['sha256'][:12]}…), {d['features']} features "
        f"(losses of epochs {', '.join(map(str, d['feature_epochs']))}), target {d['target']}.",
        f"Protocol: {p['test_size']} test curves; {p['train_size']} training curves (ensemble: "
        f"{p['ensemble_chunks']} × {p['train_size']}) from the rest; seed {p['seed']}; sampler {p['sampler']}.",
        f"R² convention: **{headline}** ({order[headline]}). {p['r2_target']}. std: {p['std']}.",
        f"Pooling: {p['pooling']}.",
    ]
    for variant in VARIANTS:
        out += ["", f"## Scaling `{variant}`: {p['variants'][variant]}", ""]
        out += _table(doc, variant, headline, with_published=True)
    out += [
        "",
        f"## Per combination rule ({model_label('qsvr', p['sampler'])}, {headline} R²)",
        "",
        "| rule | " + " | ".join(f"{v} mean ± std (worst)" for v in VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
    ]
    for rule in doc["results"][VARIANTS[0]][headline]["qsvr"]["rules"]:
        cells = [doc["results"][v][headline]["qsvr"]["rules"][rule] for v in VARIANTS]
        out.append(
            f"| {rule} | " + " | ".join(f"{s['mean']:.3f} ± {s['std']:.3f} ({s['worst']:.3f})" for s in cells) + " |"
        )
    for variant in VARIANTS:
        out += ["", f"## The other convention: {other} ({order[other]}), scaling `{variant}`", ""]
        out += _table(doc, variant, other, with_published=False)
    if "baker" in doc:
        out += [
            "",
            "## Baker-style ν-SVR: R² of loss_98 against the observed fraction of the curve",
            "",
            *baker_table(doc["baker"]),
        ]
    t = doc["timing"]
    out += [
        "",
        f"Wall time {t['wall_seconds']:.1f} s ("
        + ", ".join(f"{m} {s:.1f} s" for m, s in t["models"].items())
        + f"); hepbench {doc['version']}, scikit-learn {doc['software']['scikit-learn']}, "
        f"dwave-samplers {doc['software']['dwave-samplers']}.",
        "",
    ]
    return "\n".join(out)


def write_outputs(doc: dict, out_dir: Path) -> dict[str, Path]:
    """Validate, then write the PNG(s), the markdown and the JSON (last: it means the rest is complete)."""
    # matplotlib (through plot.py and baker.py) only when files are written: building a document, or
    # reading its labels as plot.py does, needs none.
    from hepbench.qsvr.plot import plot_study

    validate_report(doc, SCHEMA, source="the study document")
    out_dir = Path(out_dir)
    paths = {"png": plot_study(doc, out_dir / PNG_FILE)}
    if "baker" in doc:
        from hepbench.qsvr.baker import plot_r2_vs_fraction  # matplotlib, as above

        paths["baker_png"] = plot_r2_vs_fraction(doc["baker"], out_dir / BAKER_PNG)
    with atomic_open(out_dir / MARKDOWN_FILE, "w") as f:
        f.write(markdown(doc))
    paths["markdown"] = out_dir / MARKDOWN_FILE
    write_json(out_dir / JSON_FILE, doc, indent=DOCUMENT_INDENT)
    paths["json"] = out_dir / JSON_FILE
    return paths
