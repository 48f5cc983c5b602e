"""Engines: the framework behind the training loop, one object per process.

    backends.py           the backends (tensorflow, jax, torch), one Backend record each (every fact
                          about it that code outside its engine module needs), how a process
                          selects one before Keras is imported, and make_engine
    base.py               the seam: Engine (configure, build, batches, trace, train/eval step,
                          devices, software, peak memory, state), StepResult, Part, MissingDevices
    tensorflow.py         TensorFlowEngine (single, mirrored, horovod) and configure_horovod_rank
    tensorflow_steps.py   the TensorFlow steps: TrainStep, EvalStep, HorovodTrainStep, MirroredTrainStep
    jax.py                JaxEngine (single; mirrored: keras.distribution.DataParallel over local devices)
    jax_steps.py          the stateless jax.jit steps, compiled ahead once per batch shape (CompiledStep)
    torch.py              TorchEngine (single; ddp: one rank of a torch.distributed job)
    torch_steps.py        the PyTorch steps (eager or torch.compile; DDP)
    ceiling.py            a CPU's practical matmul ceiling through the process's framework (the peak of
                          a CPU copy's FLOPs utilisation)

Importing this package imports no framework; each engine module imports its own.
"""
