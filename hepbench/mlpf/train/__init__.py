"""Training, whatever the framework: the loop, the throughput it measures, the optimizer recipe.

    loop.py         the training loop: set-up (engine, data, tracing) → warm-up → timed windows →
                    validation, for benchmark copies, Mirrored copies and Horovod ranks; the set-up
                    and epoch loss an HPO trial shares with it
    numerics.py     the numerics check before the clock: the first batch's loss and gradient norm on
                    the device against the host CPU in float32, the tolerance per precision
    throughput.py   the benchmark's definition: timed windows, warm-up, totals, NonFiniteLoss
                    (no framework; the clock is injectable)
    optimizer.py    Adam/AdamW with the staircase decay and fp16 loss scaling (Keras, any backend)
    peaks.py        the GPUs' dense datasheet peaks per precision (peaks.yaml), found by device name
    utilisation.py  model FLOPs utilisation: achieved FLOP/s / the devices' peak (a CPU's: its
                    measured matmul ceiling), per copy and per run (no framework)

The framework-specific steps sit behind hepbench.mlpf.engines.
"""
