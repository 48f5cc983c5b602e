"""Performance prediction: SVR and quantum SVR (the SVR dual as a QUBO) of MLPF learning curves
(the `qsvr` extra: scikit-learn, dimod, dwave-samplers; facts in docs/qubo.md).

    curves        the packaged learning-curve table, its strict loader and the study's features
    dual          the SVR dual: RBF kernel, predictions, the intercept
    qubo          the dual as a QUBO: binary encoding of the coefficients, the penalty, decoding
    samplers      simulated annealing, exact enumeration, D-Wave hardware
    combine       the seven rules that combine an annealer's low-energy samples
    params        checks of the estimators' X and y
    model         QSVR and QSVREnsemble, scikit-learn estimators
    baker         the Baker-style nu-SVR predictor of the final loss from a partial curve
    scoring       R² in both argument orders, summaries
    study         the study's protocol as a library (splits, scaling, seeds, estimators)
    study_report  its JSON and markdown; study_runner: the study and baker commands
    plot          the study's R² distributions as a PNG
    workload      the qsvr-bmk workload (qsvr_summary.json)
    cli           `hepbench qsvr study | bench | baker`
"""
