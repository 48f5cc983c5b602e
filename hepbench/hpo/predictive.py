"""A Ray Tune scheduler that stops trials whose predicted final loss is bad.

At each rung (grace_period·rf^k < max_t, like ASHA) a trial's final loss is predicted from its
curve so far by a regressor (hepbench.hpo.predictors) trained on the curves that completed max_t
*in this run* (the scheduler never sees a table); the trial stops when the prediction is worse
than the `quantile` of those completed finals. Until `min_curves` trials have completed, ASHA's
rule decides (stop when worse than the top 1/rf of the trials recorded at the rung).

Every decision is kept in `decisions` (trial, rung, rule, prediction, threshold, action) so
reports and tests can see why a trial stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from hepbench.core.errors import UsageError
from hepbench.hpo.predictors import FinalLossPredictor, curve_features


@dataclass(frozen=True)
class Decision:
    trial_id: str
    rung: int
    rule: str  # "predicted" or "asha"
    value: float  # the metric at the rung
    predicted: float | None  # predicted final metric (rule "predicted")
    threshold: float | None  # the quantile of completed finals, or ASHA's cutoff (None: none yet)
    action: str  # "stop" or "continue"

    def as_dict(self) -> dict:
        return asdict(self)


def rungs(grace_period: int, max_t: int, reduction_factor: float) -> list[int]:
    """The decision points grace·rf^k below max_t (a decision at max_t would stop nothing)."""
    out, k = [], 0
    while (t := int(round(grace_period * reduction_factor**k))) < max_t:
        if not out or t > out[-1]:
            out.append(t)
        k += 1
    return out


class PredictiveScheduler(FIFOScheduler):
    """Stops a trial at a rung when its predicted final metric is worse than the `quantile` of the
    final metrics of the trials completed so far; ASHA's rule until `min_curves` have completed."""

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: int = 100,
        grace_period: int = 5,
        reduction_factor: float = 4,
        quantile: float = 0.25,
        min_curves: int = 8,
        predictor: str = "svr",
        seed: int = 0,
    ):
        if not (isinstance(max_t, int) and max_t >= 1):
            raise UsageError(f"max_t must be an integer >= 1, not {max_t!r}")
        if not (isinstance(grace_period, int) and 1 <= grace_period <= max_t):
            raise UsageError(f"grace_period must be an integer in [1, max_t = {max_t}], not {grace_period!r}")
        if not reduction_factor > 1:
            raise UsageError(f"reduction_factor must be > 1, not {reduction_factor!r}")
        if not 0 < quantile < 1:
            raise UsageError(f"quantile must be in (0, 1), not {quantile!r}")
        if not (isinstance(min_curves, int) and min_curves >= 2):
            raise UsageError(f"min_curves must be an integer >= 2, not {min_curves!r}")
        if mode not in (None, "min", "max"):
            raise UsageError(f"mode must be 'min' or 'max', not {mode!r}")
        super().__init__()
        FinalLossPredictor(predictor, seed)  # a missing qsvr extra is reported here, before any trial
        self._time_attr, self._metric, self._mode = time_attr, metric, mode
        self._max_t, self._rf = max_t, reduction_factor
        self._quantile, self._min_curves = quantile, min_curves
        self._predictor_kind, self._seed = predictor, seed
        self._rungs = rungs(grace_period, max_t, reduction_factor)
        self._observed: dict[str, dict[float, float]] = {}  # trial -> {time: metric}
        self._decided: dict[str, set[int]] = {}  # trial -> rungs already decided
        self._at_rung: dict[int, dict[str, float]] = {r: {} for r in self._rungs}  # ASHA's record
        self._completed: dict[str, float] = {}  # trial -> final metric at max_t, in completion order
        self._models: dict[int, tuple[int, FinalLossPredictor]] = {}  # rung -> (n completed, fit)
        self.decisions: list[Decision] = []

    # --- Ray's scheduler interface ---------------------------------------------------------

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        if (self._metric and metric) or (self._mode and mode):
            return False  # given twice: Ray reports the conflict
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        if self._metric is None and self._mode:
            self._metric = DEFAULT_METRIC
        return True

    def on_trial_add(self, tune_controller, trial) -> None:
        if not self._metric or self._mode not in ("min", "max"):
            raise UsageError(
                f"{type(self).__name__} needs a metric and a mode ('min' or 'max'): pass them to "
                f"tune.TuneConfig (got metric={self._metric!r}, mode={self._mode!r})"
            )
        self._observed.setdefault(trial.trial_id, {})
        self._decided.setdefault(trial.trial_id, set())

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self._time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        t, value = float(result[self._time_attr]), float(result[self._metric])
        self._observed.setdefault(trial.trial_id, {})[t] = value
        if t >= self._max_t:
            self._complete(trial.trial_id)
            return TrialScheduler.STOP
        decided = self._decided.setdefault(trial.trial_id, set())
        # The highest rung passed and not yet decided (ASHA's order: one decision per result).
        rung = next((r for r in reversed(self._rungs) if t >= r and r not in decided), None)
        if rung is None:
            return TrialScheduler.CONTINUE
        decided.add(rung)
        return self._decide(trial.trial_id, rung, value)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        # Ray calls this after a STOP too, with the last result: record it, complete once.
        if result and self._time_attr in result and self._metric in result:
            self._observed.setdefault(trial.trial_id, {})[float(result[self._time_attr])] = float(result[self._metric])
            if float(result[self._time_attr]) >= self._max_t:
                self._complete(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial) -> None:
        pass  # its observations stay: a removed trial's curve is still evidence

    def debug_string(self) -> str:
        stops = sum(d.action == "stop" for d in self.decisions)
        return (
            f"Using PredictiveScheduler ({self._predictor_kind}): {len(self._completed)} completed, "
            f"{stops} of {len(self.decisions)} rung decisions stopped"
        )

    # --- the rule ---------------------------------------------------------------------------

    @property
    def completed(self) -> dict[str, float]:
        """Final metric of each trial that reached max_t, in completion order."""
        return dict(self._completed)

    def _loss(self, value: float) -> float:
        return value if self._mode == "min" else -value  # internally: lower is better

    def _complete(self, trial_id: str) -> None:
        if trial_id in self._completed:
            return
        times = sorted(t for t in self._observed[trial_id] if t <= self._max_t)
        self._completed[trial_id] = self._observed[trial_id][times[-1]]

    def _decide(self, trial_id: str, rung: int, value: float) -> str:
        loss = self._loss(value)
        recorded = self._at_rung[rung]
        if len(self._completed) >= self._min_curves:
            predicted = float(self._model(rung).predict(self._features(trial_id, rung)[None, :])[0])
            finals = [self._loss(v) for v in self._completed.values()]
            threshold = float(np.quantile(finals, self._quantile))
            stop, rule = predicted > threshold, "predicted"
            shown = (predicted if self._mode == "min" else -predicted, threshold if self._mode == "min" else -threshold)
        else:
            # ASHA: stop when worse than the (1 - 1/rf) best fraction of those recorded at the rung.
            cutoff = float(np.percentile(list(recorded.values()), 100 / self._rf)) if recorded else None
            stop, rule = cutoff is not None and loss > cutoff, "asha"
            shown = (None, None if cutoff is None else (cutoff if self._mode == "min" else -cutoff))
        recorded[trial_id] = loss
        action = TrialScheduler.STOP if stop else TrialScheduler.CONTINUE
        self.decisions.append(Decision(trial_id, rung, rule, value, shown[0], shown[1], "stop" if stop else "continue"))
        return action

    def _features(self, trial_id: str, rung: int) -> np.ndarray:
        observed = self._observed[trial_id]
        times = np.array(sorted(observed))
        return curve_features(times, np.array([observed[t] for t in times]), rung)

    def _model(self, rung: int) -> FinalLossPredictor:
        """The predictor for `rung`, refitted only when more trials have completed since the last fit."""
        n = len(self._completed)
        cached = self._models.get(rung)
        if cached is not None and cached[0] == n:
            return cached[1]
        ids = list(self._completed)
        X = np.stack([self._features(i, rung) for i in ids])
        y = np.array([self._loss(self._completed[i]) for i in ids])
        # Fit on losses (lower is better) whatever the mode, so predictions compare with `finals`.
        model = FinalLossPredictor(self._predictor_kind, self._seed).fit(X, y)
        self._models[rung] = (n, model)
        return model

    def decisions_as_dicts(self) -> list[dict]:
        return [d.as_dict() for d in self.decisions]
