#!/usr/bin/env python
"""Wall time of one Sim-QSVR fit and its R² at several num_sweeps: justifies QSVR's default.

The study's protocol (docs/qubo.md): the 295 curves, 13 features,
QuantileTransformer(n_quantiles=50) on X and on y fitted on all curves, test = 148 curves, 20
training curves drawn from the rest; R² = r2_score(y_true, y_pred) on the scaled target. Each
split is fitted once per num_sweeps (same seed), so the figures compare like with like; sklearn
SVR(C=67.61, epsilon=0.02, gamma=0.1) on the same splits is the reference.

    python benchmarks/qsvr_fit_speed.py [--splits 20] [--sweeps 10,20,30,50,100,1000] [--reads 1000]

The slowest row (1000 sweeps) takes ~10–20 s a fit: --splits 20 runs ~8 min.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import r2_score
from sklearn.preprocessing import QuantileTransformer
from sklearn.svm import SVR

from hepbench.qsvr.combine import RULES
from hepbench.qsvr.curves import load_curves, study_features
from hepbench.qsvr.model import DEFAULT_RULE, QSVR

TEST_SIZE = 148
TRAIN_SIZE = 20


def scaled_study_data() -> tuple[np.ndarray, np.ndarray]:
    """X and y quantile-scaled on all 295 curves, as the study did (a leak, kept for comparability)."""
    X, y = study_features(load_curves())
    X = QuantileTransformer(n_quantiles=50).fit_transform(X)
    y = QuantileTransformer(n_quantiles=50).fit_transform(y[:, None])[:, 0]
    return X, y


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows: test = 148 random curves, train = 20 of the others."""
    order = np.random.default_rng(seed).permutation(n)
    return order[TEST_SIZE : TEST_SIZE + TRAIN_SIZE], order[:TEST_SIZE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--sweeps", default="10,20,30,50,100,1000")
    parser.add_argument("--reads", type=int, default=1000)
    args = parser.parse_args()
    sweeps = [int(s) for s in args.sweeps.split(",")]

    X, y = scaled_study_data()
    splits = [split(len(X), seed) for seed in range(args.splits)]
    svr = [r2_score(y[te], SVR(C=67.61, epsilon=0.02, gamma=0.1).fit(X[tr], y[tr]).predict(X[te])) for tr, te in splits]
    print(
        f"{len(X)} curves, {args.splits} splits (test {TEST_SIZE}, train {TRAIN_SIZE}), "
        f"N={TRAIN_SIZE}, K=3 (120 variables), {args.reads} reads"
    )
    print(
        f"sklearn SVR(C=67.61, epsilon=0.02, gamma=0.1): mean R² {np.mean(svr):.3f} "
        f"(min {np.min(svr):.3f}, max {np.max(svr):.3f})\n"
    )

    short = {r: r.replace("softmax_", "sm_").replace("inverse_", "inv_") for r in RULES}
    print(f"{'sweeps':>6} {'s/fit':>6} {'min s':>6} {'fits/s':>6}  " + " ".join(f"{short[r]:>11}" for r in RULES))
    default_r2 = {}
    for num_sweeps in sweeps:
        seconds, r2 = [], {r: [] for r in RULES}
        for s, (tr, te) in enumerate(splits):
            model = QSVR(num_reads=args.reads, num_sweeps=num_sweeps, seed=s)
            t0 = time.perf_counter()
            model.fit(X[tr], y[tr])
            seconds.append(time.perf_counter() - t0)
            for rule, pred in model.predict_rules(X[te]).items():
                r2[rule].append(r2_score(y[te], pred))
        t = float(np.median(seconds))  # the median and the min: the machine may be shared
        print(
            f"{num_sweeps:>6} {t:6.2f} {min(seconds):6.2f} {1 / t:6.2f}  "
            + " ".join(f"{np.mean(r2[r]):11.3f}" for r in RULES),
            flush=True,
        )
        default_r2[num_sweeps] = np.array(r2[DEFAULT_RULE])
    print("\nmean R² over the splits per combination rule; s/fit: median wall time of one fit")
    reference = max(sweeps)
    print(
        f"R² of the default rule ({DEFAULT_RULE}) minus that at {reference} sweeps, same splits "
        "(mean ± standard error):"
    )
    for num_sweeps in sweeps:
        diff = default_r2[num_sweeps] - default_r2[reference]
        error = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(f"{num_sweeps:>6}  {diff.mean():+.4f} ± {error:.4f}")


if __name__ == "__main__":
    main()
