"""The predictive scheduler driven directly with stand-in trials and constructed curves (no Ray cluster).

Curves: L(t) = final + c·exp(-t/τ), 30 epochs. "Fast" runs (τ = 2) look good at the first rung (about
2.1-2.3) but end at 2.0-2.2; "slow" runs (τ = 8, c = 3) look bad there (2.6-2.8) but end at 1.1-1.3.
A ranking rule (ASHA) keeps the fast and stops the slow ones; a predictor trained on completed curves
must do the opposite.
"""

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ray.tune")
pytest.importorskip("sklearn")

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler  # noqa: E402

from hepbench.core.errors import UsageError  # noqa: E402
from hepbench.hpo import predictors  # noqa: E402
from hepbench.hpo.predictive import PredictiveScheduler, rungs  # noqa: E402
from hepbench.hpo.schedulers import SchedulerSettings, make_scheduler  # noqa: E402

MAX_T = 30


def curve(final, tau, c=1.0):
    t = np.arange(1, MAX_T + 1)
    return final + c * np.exp(-t / tau)


def fast(final):
    return curve(final, 2.0)


def slow(final):
    return curve(final, 8.0, 3.0)


def scheduler(mode="min", **kw):
    s = PredictiveScheduler(
        max_t=MAX_T,
        grace_period=5,
        reduction_factor=2,
        min_curves=kw.pop("min_curves", 6),
        quantile=kw.pop("quantile", 0.25),
        seed=0,
        **kw,
    )
    assert s.set_search_properties("val_loss", mode)
    return s


def run(s, tid, losses, upto=MAX_T, sign=1.0):
    """Feed epochs 1..upto of a curve; stop at the first STOP. Returns the epochs run."""
    trial = SimpleNamespace(trial_id=tid)
    s.on_trial_add(None, trial)
    for e in range(upto):
        result = {"training_iteration": e + 1, "val_loss": sign * float(losses[e])}
        if s.on_trial_result(None, trial, result) == TrialScheduler.STOP:
            s.on_trial_complete(None, trial, result)
            return e + 1
    return upto


def train(s, sign=1.0):
    """Six completed curves, half fast, half slow, run to max_t whatever ASHA's rule would say (their
    rung decisions are marked as taken): the training data of the tests."""
    finals = [(fast, 2.0), (slow, 1.0), (fast, 2.1), (slow, 1.1), (fast, 2.2), (slow, 1.2)]
    for i, (kind, final) in enumerate(finals):
        trial = SimpleNamespace(trial_id=f"train{i}")
        s.on_trial_add(None, trial)
        losses = kind(final)
        for e in range(MAX_T):
            s._decided.setdefault(trial.trial_id, set()).update(s._rungs)  # bypass decisions: seed the data
            s.on_trial_result(None, trial, {"training_iteration": e + 1, "val_loss": sign * float(losses[e])})
    assert len(s.completed) == 6


def test_rungs_like_asha_below_max_t():
    assert rungs(5, 100, 4) == [5, 20, 80]
    assert rungs(5, 30, 2) == [5, 10, 20]
    assert rungs(1, 1, 4) == []


def test_bad_predicted_trial_is_stopped_and_good_one_kept():
    s = scheduler()
    train(s)
    # At rung 5 the slow trial is the worst seen but its predicted final is the best.
    assert run(s, "slow-good", slow(1.05)) == MAX_T
    assert run(s, "fast-bad", fast(2.15)) == 5
    by_trial = {d.trial_id: d for d in s.decisions if d.rung == 5}
    stop, keep = by_trial["fast-bad"], by_trial["slow-good"]
    assert (stop.rule, stop.action) == ("predicted", "stop")
    assert (keep.rule, keep.action) == ("predicted", "continue")
    assert stop.predicted > stop.threshold > keep.predicted
    assert abs(stop.predicted - fast(2.15)[-1]) < 0.1 and abs(keep.predicted - slow(1.05)[-1]) < 0.1
    assert keep.value > stop.value  # the ranking at the rung says the opposite


def test_asha_rule_would_have_kept_the_bad_one():
    asha = AsyncHyperBandScheduler(
        time_attr="training_iteration", metric="val_loss", mode="min", max_t=MAX_T, grace_period=5, reduction_factor=2
    )
    actions = []
    for tid, losses in (("a", fast(2.0)), ("b", slow(1.05)), ("c", fast(2.15))):
        trial = SimpleNamespace(trial_id=tid)
        asha.on_trial_add(None, trial)
        actions.append(asha.on_trial_result(None, trial, {"training_iteration": 5, "val_loss": float(losses[4])}))
    assert actions == ["CONTINUE", "STOP", "CONTINUE"]


def test_asha_fallback_before_min_curves_matches_ray_asha():
    rng = np.random.default_rng(3)
    finals = rng.uniform(1, 3, size=12)
    kinds = rng.integers(0, 2, size=12)
    s = scheduler(min_curves=50)
    asha = AsyncHyperBandScheduler(
        time_attr="training_iteration", metric="val_loss", mode="min", max_t=MAX_T, grace_period=5, reduction_factor=2
    )
    for i, (final, kind) in enumerate(zip(finals, kinds)):
        losses = (slow if kind else fast)(final)
        trial = SimpleNamespace(trial_id=str(i))
        s.on_trial_add(None, trial)
        asha.on_trial_add(None, trial)
        for e in range(MAX_T):
            r = {"training_iteration": e + 1, "val_loss": float(losses[e])}
            ours, theirs = s.on_trial_result(None, trial, r), asha.on_trial_result(None, trial, r)
            assert ours == theirs, (i, e)
            if ours == TrialScheduler.STOP:
                break
    assert {d.rule for d in s.decisions} == {"asha"}
    assert any(d.action == "stop" for d in s.decisions) and any(d.action == "continue" for d in s.decisions)
    assert s.decisions[0].threshold is None  # the first trial at a rung has nothing to compare with


def test_switches_to_prediction_once_min_curves_completed():
    s = scheduler(min_curves=2)
    assert run(s, "0", slow(1.1)) == MAX_T  # first at every rung: nothing to compare with
    assert run(s, "1", slow(1.0)) == MAX_T  # better than trial 0 at every rung
    assert [d.rule for d in s.decisions] == ["asha"] * 6
    run(s, "2", fast(2.0))
    assert s.decisions[-1].rule == "predicted"


def test_maximising_mode_mirrors_minimising():
    lo, hi = scheduler("min"), scheduler("max")
    train(lo)
    train(hi, sign=-1.0)
    for tid, losses in (("g", slow(1.05)), ("b", fast(2.15))):
        assert run(lo, tid, losses) == run(hi, tid, losses, sign=-1.0)
    assert [d.action for d in lo.decisions] == [d.action for d in hi.decisions]


def test_predictor_refitted_only_when_completed_set_grows(monkeypatch):
    fits = []
    original = predictors.FinalLossPredictor.fit

    def counting_fit(self, X, y):
        fits.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(predictors.FinalLossPredictor, "fit", counting_fit)
    s = scheduler()
    train(s)
    run(s, "a", fast(2.1), upto=6)
    run(s, "b", fast(2.2), upto=6)
    assert fits == [6]  # one fit for rung 5, reused
    run(s, "c", slow(1.0))  # completes: 7 curves
    run(s, "d", fast(2.1), upto=6)
    assert fits == [6, 6, 6, 7]  # rungs 10 and 20 for "c", then rung 5 refitted


def test_needs_metric_and_mode():
    s = PredictiveScheduler(max_t=MAX_T)
    with pytest.raises(UsageError, match="metric and a mode"):
        s.on_trial_add(None, SimpleNamespace(trial_id="x"))
    assert PredictiveScheduler(metric="val_loss", mode="min").set_search_properties("val_loss", "min") is False


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"quantile": 1.0}, "quantile"),
        ({"min_curves": 1}, "min_curves"),
        ({"grace_period": 0}, "grace_period"),
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"predictor": "gp"}, "predictor must be one of svr, qsvr"),
        ({"mode": "lowest"}, "mode"),
    ],
)
def test_bad_settings_are_usage_errors(kw, match):
    with pytest.raises(UsageError, match=match):
        PredictiveScheduler(**kw)


def test_qsvr_without_extra_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_qsvr(name, *args, **kwargs):
        if name.startswith("hepbench.qsvr.model"):
            raise ImportError("No module named 'dimod'", name="dimod")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_qsvr)
    with pytest.raises(UsageError, match="qsvr.*extra.*dimod"):
        PredictiveScheduler(predictor="qsvr")


def test_qsvr_predictor_stops_the_bad_trial():
    pytest.importorskip("dimod")
    s = scheduler(predictor="qsvr")
    train(s)
    assert run(s, "fast-bad", fast(2.15)) == 5
    assert s.decisions[-1].rule == "predicted"


def test_make_scheduler_builds_it_and_rejects_unknown_names():
    s = make_scheduler("predictive", SchedulerSettings(max_t=MAX_T, grace_period=5, quantile=0.3, min_curves=4))
    assert isinstance(s, PredictiveScheduler)
    with pytest.raises(UsageError, match="unknown scheduler 'pbt'"):
        make_scheduler("pbt", SchedulerSettings())
