"""Engines: the framework behind the training loop, one object per process.

    base.py               the seam: Engine (configure, build, batches, trace, train/eval step,
                          devices, software, peak memory, state), StepResult, Part, MissingDevices
    tensorflow.py         TensorFlowEngine (single, mirrored, horovod) and configure_horovod_rank
    tensorflow_steps.py   the TensorFlow steps: TrainStep, EvalStep, HorovodTrainStep, MirroredTrainStep

Importing this package imports no framework; each engine module imports its own.
"""
