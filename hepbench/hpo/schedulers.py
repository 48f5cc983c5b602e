"""The trial schedulers (ASHA, Hyperband, BOHB, the prediction-based one, FIFO) and their searchers,
with the study's settings (docs/hpo.md).

Metric and mode go to `tune.TuneConfig` only: Ray refuses them in both places.
"""

from __future__ import annotations

from dataclasses import dataclass

from hepbench.core.errors import UsageError

SCHEDULERS = ("asha", "hyperband", "bohb", "predictive", "fifo")
PREDICTORS = ("svr", "qsvr")
METRIC, MODE = "val_loss", "min"
DEFAULT_GRACE_PERIOD = 5  # the study's ASHA setting
TIME_ATTR = "training_iteration"  # one report per epoch: iterations are epochs, across pause/resume


@dataclass(frozen=True)
class SchedulerSettings:
    """What the schedulers are built with; the defaults are the study's MLPF ASHA settings."""

    max_t: int = 100  # epochs a trial may run
    grace_period: int | None = None  # epochs before the first decision (ASHA, predictive); None: min(5, max_t)
    reduction_factor: float = 4  # rungs at grace_period * rf^k; 1/rf of the trials go on
    seed: int = 42
    quantile: float = 0.25  # predictive: stop when predicted worse than this quantile of completed trials
    min_curves: int = 8  # predictive: completed curves needed before predictions replace ASHA's rule
    predictor: str = "svr"  # predictive: "svr" (scikit-learn) or "qsvr" (hepbench.qsvr, simulated annealing)

    def __post_init__(self) -> None:
        if int(self.max_t) != self.max_t or self.max_t < 1:
            raise UsageError(f"max epochs must be a whole number >= 1, not {self.max_t}")
        if self.grace_period is None:
            object.__setattr__(self, "grace_period", min(DEFAULT_GRACE_PERIOD, self.max_t))
        if int(self.grace_period) != self.grace_period or not 1 <= self.grace_period <= self.max_t:
            raise UsageError(
                f"grace period must be a whole number in [1, max epochs = {self.max_t}], not {self.grace_period}"
            )
        if not self.reduction_factor > 1:
            raise UsageError(f"reduction factor must be > 1, not {self.reduction_factor}")
        if not 0 < self.quantile < 1:
            raise UsageError(f"quantile must be in (0, 1), not {self.quantile}")
        if int(self.min_curves) != self.min_curves or self.min_curves < 2:
            raise UsageError(f"min curves must be a whole number >= 2, not {self.min_curves}")
        if self.predictor not in PREDICTORS:
            raise UsageError(f"predictor must be one of {', '.join(PREDICTORS)}, not {self.predictor!r}")


def check_scheduler(name: str) -> str:
    if name not in SCHEDULERS:
        raise UsageError(f"unknown scheduler {name!r}; choose from {', '.join(SCHEDULERS)}")
    return name


def make_scheduler(name: str, settings: SchedulerSettings):
    """The Ray Tune TrialScheduler called `name`."""
    from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, HyperBandForBOHB, HyperBandScheduler

    check_scheduler(name)
    s = settings
    if name == "asha":
        return AsyncHyperBandScheduler(
            time_attr=TIME_ATTR,
            max_t=s.max_t,
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
            brackets=1,
        )
    if name == "hyperband":
        # Synchronous: pauses trials at the rungs, so the trainable must checkpoint.
        return HyperBandScheduler(time_attr=TIME_ATTR, max_t=s.max_t, reduction_factor=s.reduction_factor)
    if name == "bohb":
        return HyperBandForBOHB(time_attr=TIME_ATTR, max_t=s.max_t, reduction_factor=s.reduction_factor)
    if name == "predictive":
        from hepbench.hpo.predictive import PredictiveScheduler  # imports Ray, as the lines above

        return PredictiveScheduler(
            time_attr=TIME_ATTR,
            max_t=s.max_t,
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
            quantile=s.quantile,
            min_curves=s.min_curves,
            predictor=s.predictor,
            seed=s.seed,
        )
    return FIFOScheduler()


def make_searcher(name: str, settings: SchedulerSettings, space):
    """(search algorithm, param_space for the Tuner). BOHB samples from its own model of `space`;
    the others draw at random from `space`'s Ray Tune samplers, seeded."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    check_scheduler(name)
    if name == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        # With its own space, TuneBOHB ignores the Tuner's metric and mode: it needs them here.
        return TuneBOHB(space.to_configspace(seed=settings.seed), metric=METRIC, mode=MODE, seed=settings.seed), {}
    return BasicVariantGenerator(random_state=settings.seed), space.to_tune()
