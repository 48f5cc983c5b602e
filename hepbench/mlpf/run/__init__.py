"""`hepbench run` and `hepbench scale`: the benchmark run, in phases (validate → plan → execute →
collect → report), with one process per copy or one rank (Horovod, PyTorch DDP) per process.

    benchmark   run_benchmark: the phases in order; LocalCopies (single, mirrored) starts the copy processes
    plan        RunOptions, strategy and device choice, CPU sets, each copy's or rank's CopySpec
    collect     the copies' entries and the run's context as one report
    ranks       RankJob: what Horovod and DDP ranks share (all ranks validate, rank 0 reports; the Watchdog)
    horovod     HorovodRank: one rank of a horovodrun/mpirun/srun job (TensorFlow)
    ddp         DdpRank: one rank of a torchrun/srun PyTorch DDP job (torch backend)
    copy        CopySpec and run_copy: one copy, from its spec to its report entry
    worker      `python -m hepbench.mlpf.run.worker SPEC RESULT`: a copy process
    signals     SIGTERM/SIGINT as the Interrupted exception
    scale       weak scaling: `hepbench run --strategy horovod` (horovodrun) or `ddp` (torchrun) at several job sizes
    cli         `hepbench run` (and run_parser(), the same parser alone)
    scale_cli   `hepbench scale`
"""
