"""Hyperparameter optimisation of MLPF with Ray Tune (the `hpo` extra; facts in docs/hpo.md).
Ray is imported only by the modules that need it.

    space           the study's search space (search_space.yaml), strict values, Tune/ConfigSpace forms
    trainable       one trial: the MLPF training loop's set-up, an epoch, checkpoints
    schedulers      ASHA, Hyperband, BOHB, FIFO and the prediction-based scheduler, with the study's settings
    predictive      the prediction-based scheduler; predictors: its final-loss predictors (SVR, QSVR)
    search          a real search (`hpo run`, `hpo bench`); trials: its records, table and JSON
    plot            the trials' learning curves as a PNG
    replay          the schedulers over the recorded learning-curve table; replay_report: its outputs;
                    nearest: BOHB's proposals mapped to recorded curves
    bench           the hpo-bmk workload (hpo_summary.json)
    extra           the check that the hpo extra is installed
    cli             `hepbench hpo run | replay | bench` (run_cli, replay_cli, bench_cli)
"""
