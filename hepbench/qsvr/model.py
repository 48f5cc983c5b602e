"""QSVR: ε-SVR trained by sampling its dual as a QUBO (simulated annealing, exact, or D-Wave), and
QSVREnsemble: QSVRs on disjoint chunks of the training set, weighted by their R² on the others.

Both are scikit-learn regressors (clone, Pipeline, get_params/set_params). One fit computes all
seven combination rules of hepbench.qsvr.combine.RULES; `predict(X, rule=...)` reads any of them,
`rule=None` the one named by the `combine` parameter.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from hepbench.qsvr import params as check
from hepbench.qsvr.combine import RULES, rule_weights, top_unique, training_losses
from hepbench.qsvr.dual import intercept, predict, rbf_kernel
from hepbench.qsvr.qubo import build_qubo, decode, max_coefficient
from hepbench.qsvr.samplers import make_sampler

# Sweeps per simulated-annealing read. On the study's problem (N = 20, K = 3, 1000 reads, 20
# splits) 30 sweeps give the R² of 1000 (paired difference +0.0006 ± 0.0022) in 0.4 s a fit
# (0.8 s on a loaded 2-core machine) instead of 11–18 s; 20 sweeps lose 0.005 ± 0.002.
# See benchmarks/qsvr_fit_speed.py.
DEFAULT_NUM_SWEEPS = 30
DEFAULT_RULE = "softmax_inverse_logcosh"  # the poster's "QSVR" row
QSVR_PARAMS = (
    "B",
    "K",
    "k0",
    "xi",
    "epsilon",
    "gamma",
    "C",
    "num_reads",
    "num_sweeps",
    "top_m",
    "combine",
    "sampler",
    "seed",
)


class QSVR(RegressorMixin, BaseEstimator):
    """ε-SVR with an RBF kernel exp(−γ‖x−x'‖²) whose dual is solved as a QUBO.

    B, K, k0: the binary encoding α = Σ_{k<K} B^(k−k0) a_k; xi: the weight of the penalty on
    Σ(α−α̂); C: the upper bound of a coefficient, used to tell free support vectors for the bias
    (None: the largest encodable coefficient); num_reads, num_sweeps, seed: the sampler's
    (num_sweeps and seed apply to simulated annealing); top_m: the lowest-energy unique samples
    that are combined; combine: the rule `predict` uses by default; sampler: 'simulated',
    'exact', 'dwave' or an object with `sample(Q, *, num_reads, num_sweeps, seed)`.

    Fitted: dual_coef_ and intercept_ (of `combine`), rule_coefficients_ and rule_intercepts_
    (every rule), rule_weights_ (per rule, the weights of the M samples), sample_alpha_,
    sample_alpha_hat_, sample_energies_, sample_mse_, sample_logcosh_ (the M samples), C_, gamma_.
    """

    def __init__(
        self,
        B=0.5,
        K=3,
        k0=0.005,
        xi=0.01,
        epsilon=0.02,
        gamma=0.1,
        C=None,
        num_reads=1000,
        num_sweeps=DEFAULT_NUM_SWEEPS,
        top_m=4,
        combine=DEFAULT_RULE,
        sampler="simulated",
        seed=None,
    ):
        self.B = B
        self.K = K
        self.k0 = k0
        self.xi = xi
        self.epsilon = epsilon
        self.gamma = gamma
        self.C = C
        self.num_reads = num_reads
        self.num_sweeps = num_sweeps
        self.top_m = top_m
        self.combine = combine
        self.sampler = sampler
        self.seed = seed

    def _checked(self) -> dict:
        p = {
            "B": check.positive_number("B", self.B),
            "K": check.int_at_least("K", self.K),
            "k0": check.finite_number("k0", self.k0),
            "xi": check.positive_number("xi", self.xi, allow_zero=True),
            "epsilon": check.positive_number("epsilon", self.epsilon, allow_zero=True),
            "gamma": check.positive_number("gamma", self.gamma),
            "num_reads": check.int_at_least("num_reads", self.num_reads),
            "num_sweeps": check.int_at_least("num_sweeps", self.num_sweeps),
            "top_m": check.int_at_least("top_m", self.top_m),
            "combine": check.choice("combine", self.combine, RULES),
            "seed": check.seed_or_none("seed", self.seed),
        }
        encodable = max_coefficient(p["B"], p["K"], p["k0"])
        p["C"] = encodable if self.C is None else check.positive_number("C", self.C)
        p["sampler"] = make_sampler(self.sampler)
        return p

    def fit(self, X, y):
        p = self._checked()
        X = check.features(X)
        y = check.targets(y, len(X))
        if len(X) < 2:
            raise check.ParameterError(f"X has {len(X)} row; QSVR needs at least 2 training samples")
        N = len(X)
        kernel = rbf_kernel(X, X, p["gamma"])
        Q = build_qubo(kernel, y, B=p["B"], K=p["K"], k0=p["k0"], xi=p["xi"], epsilon=p["epsilon"])
        bits, energies = p["sampler"].sample(Q, num_reads=p["num_reads"], num_sweeps=p["num_sweeps"], seed=p["seed"])
        bits, energies = top_unique(bits, energies, p["top_m"])
        alpha, alpha_hat = decode(bits, p["B"], p["K"], p["k0"], N)
        bias = intercept(alpha, alpha_hat, kernel, y, p["epsilon"], p["C"])
        mse, logcosh = training_losses(predict(alpha - alpha_hat, bias, kernel), y)

        self.X_fit_ = X
        self.n_features_in_ = X.shape[1]
        self.C_, self.gamma_ = p["C"], p["gamma"]  # predict uses the fitted γ even after set_params
        self.sample_alpha_, self.sample_alpha_hat_, self.sample_energies_ = alpha, alpha_hat, energies
        self.sample_intercepts_, self.sample_mse_, self.sample_logcosh_ = bias, mse, logcosh
        self.rule_weights_ = rule_weights(mse, logcosh, energies)
        self.rule_coefficients_, self.rule_intercepts_ = {}, {}
        for rule, w in self.rule_weights_.items():
            # Average α and α̂, then b from the averaged ones (the study's method). The KKT bias is
            # discontinuous: a coefficient that a tiny weight makes non-zero counts as free.
            a, h = w @ alpha, w @ alpha_hat
            self.rule_coefficients_[rule] = a - h
            self.rule_intercepts_[rule] = float(intercept(a, h, kernel, y, p["epsilon"], p["C"]))
        self.dual_coef_ = self.rule_coefficients_[p["combine"]]
        self.intercept_ = self.rule_intercepts_[p["combine"]]
        return self

    def _kernel_rows(self, X) -> np.ndarray:
        check_is_fitted(self, "rule_coefficients_")
        X = check.features(X, n_features=self.n_features_in_)
        return rbf_kernel(self.X_fit_, X, self.gamma_)

    def _rule(self, rule) -> str:
        return check.choice("rule", self.combine if rule is None else rule, RULES)

    def predict(self, X, rule=None) -> np.ndarray:
        """Predictions of the combination `rule` (default: the `combine` parameter)."""
        rows = self._kernel_rows(X)
        rule = self._rule(rule)
        return predict(self.rule_coefficients_[rule], self.rule_intercepts_[rule], rows)

    def predict_rules(self, X) -> dict[str, np.ndarray]:
        """Predictions of every rule (one kernel evaluation)."""
        rows = self._kernel_rows(X)
        return {r: predict(self.rule_coefficients_[r], self.rule_intercepts_[r], rows) for r in RULES}

    def score(self, X, y, sample_weight=None, rule=None) -> float:
        """R² = r2_score(y_true, y_pred) of the rule's predictions."""
        return float(r2_score(y, self.predict(X, rule=rule), sample_weight=sample_weight))


def chunk_weights(r2) -> np.ndarray:
    """max(R², 0) normalised; equal weights when every R² is ≤ 0 (or NaN: a constant target)."""
    w = np.maximum(np.nan_to_num(np.asarray(r2, dtype=float), nan=0.0), 0.0)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))


def _chunk_seeds(seed, n: int) -> list:
    if seed is None:
        return [None] * n
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


class QSVREnsemble(RegressorMixin, BaseEstimator):
    """QSVRs on `n_chunks` disjoint consecutive chunks of the training set (the study: 80 curves → 4
    chunks of 20; pass the rows in random order), each weighted by max(R² on the other chunks, 0),
    the weights normalised; when every weight is 0, the chunks are weighted equally. The other
    parameters are QSVR's; each chunk's seed is derived from `seed`. The weights are computed for
    every rule, so `predict(X, rule=...)` reads any rule from one fit.

    Fitted: estimators_, chunks_ (row indices), chunk_r2_ and chunk_weights_ (per rule).
    """

    def __init__(
        self,
        n_chunks=4,
        B=0.5,
        K=3,
        k0=0.005,
        xi=0.01,
        epsilon=0.02,
        gamma=0.1,
        C=None,
        num_reads=1000,
        num_sweeps=DEFAULT_NUM_SWEEPS,
        top_m=4,
        combine=DEFAULT_RULE,
        sampler="simulated",
        seed=None,
    ):
        self.n_chunks = n_chunks
        self.B = B
        self.K = K
        self.k0 = k0
        self.xi = xi
        self.epsilon = epsilon
        self.gamma = gamma
        self.C = C
        self.num_reads = num_reads
        self.num_sweeps = num_sweeps
        self.top_m = top_m
        self.combine = combine
        self.sampler = sampler
        self.seed = seed

    def fit(self, X, y):
        n_chunks = check.int_at_least("n_chunks", self.n_chunks, minimum=2)
        check.choice("combine", self.combine, RULES)
        seed = check.seed_or_none("seed", self.seed)
        X = check.features(X)
        y = check.targets(y, len(X))
        if len(X) < 2 * n_chunks:
            raise check.ParameterError(
                f"n_chunks={n_chunks} needs at least {2 * n_chunks} training rows (2 per chunk), X has {len(X)}"
            )
        qsvr_params = {name: getattr(self, name) for name in QSVR_PARAMS if name != "seed"}
        self.chunks_ = np.array_split(np.arange(len(X)), n_chunks)
        self.estimators_ = []
        r2 = {rule: np.empty(n_chunks) for rule in RULES}
        for c, (rows, chunk_seed) in enumerate(zip(self.chunks_, _chunk_seeds(seed, n_chunks))):
            model = QSVR(**qsvr_params, seed=chunk_seed).fit(X[rows], y[rows])
            others = np.setdiff1d(np.arange(len(X)), rows)
            for rule, pred in model.predict_rules(X[others]).items():
                r2[rule][c] = r2_score(y[others], pred)
            self.estimators_.append(model)
        self.chunk_r2_ = r2
        self.chunk_weights_ = {rule: chunk_weights(values) for rule, values in r2.items()}
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X, rule=None) -> np.ndarray:
        """The weighted sum of the chunk models' predictions of `rule` (default: `combine`)."""
        check_is_fitted(self, "estimators_")
        rule = check.choice("rule", self.combine if rule is None else rule, RULES)
        X = check.features(X, n_features=self.n_features_in_)
        weights = self.chunk_weights_[rule]
        return sum(w * m.predict(X, rule=rule) for w, m in zip(weights, self.estimators_))

    def predict_rules(self, X) -> dict[str, np.ndarray]:
        """Predictions of every rule."""
        check_is_fitted(self, "estimators_")
        X = check.features(X, n_features=self.n_features_in_)
        per_model = [m.predict_rules(X) for m in self.estimators_]
        return {r: sum(w * p[r] for w, p in zip(self.chunk_weights_[r], per_model)) for r in RULES}

    def score(self, X, y, sample_weight=None, rule=None) -> float:
        """R² = r2_score(y_true, y_pred) of the rule's predictions."""
        return float(r2_score(y, self.predict(X, rule=rule), sample_weight=sample_weight))
