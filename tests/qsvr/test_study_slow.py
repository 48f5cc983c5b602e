"""The issue's acceptance numbers on the shipped table (scaling `published`, the study's protocol).

The full default protocol (SVR x1000, Sim-QSVR x100, ensemble x10, both variants) takes about
10 minutes on a 2-core machine, so this test runs fewer repeats with the same bounds:
300 SVR repeats (the standard error of the mean R² is ~0.003, far inside ±0.02), 15 Sim-QSVR fits
(105 pooled values) and 3 ensemble fits. The std and worst bounds of the ensemble are weaker with
3 fits than with 10; `python benchmarks/qsvr_study.py` checks them on the full protocol.
"""

from __future__ import annotations

import pytest

from hepbench.qsvr.curves import load_curves, study_features
from hepbench.qsvr.scoring import summary
from hepbench.qsvr.study import Protocol, run_study


@pytest.mark.slow
def test_the_reduced_protocol_meets_the_acceptance_numbers():
    X, y = study_features(load_curves())
    protocol = Protocol(svr_repeats=300, qsvr_repeats=15, ensemble_repeats=3, seed=0)
    r2 = run_study(X, y, protocol)["r2"]["published"]

    def stats(model: str, convention: str) -> dict:
        if model == "svr":
            return summary(r2["svr"][convention])
        if model == "qsvr":  # the seven rules pooled, as the published Sim-QSVR row
            return summary([v for per in r2["qsvr"].values() for v in per[convention]])
        return summary(r2["qsvr_ensemble"]["softmax_inverse_logcosh"][convention])

    assert stats("svr", "swapped")["mean"] == pytest.approx(0.889, abs=0.02)  # the published table reproduced
    assert stats("svr", "correct")["mean"] >= 0.87
    assert stats("qsvr", "correct")["mean"] >= 0.88
    ensemble = stats("qsvr_ensemble", "correct")
    assert ensemble["std"] <= 0.03 and ensemble["worst"] >= 0.80
