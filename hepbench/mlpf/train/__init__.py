"""Training, whatever the framework: the loop, the throughput it measures, the optimizer recipe.

    loop.py         the training loop: set-up (engine, data, tracing) → warm-up → timed windows →
                    validation, for benchmark copies, Mirrored copies and Horovod ranks; the set-up
                    and epoch loss an HPO trial shares with it
    throughput.py   the benchmark's definition: timed windows, warm-up, totals, NonFiniteLoss
                    (no framework; the clock is injectable)
    optimizer.py    Adam/AdamW with the staircase decay and fp16 loss scaling (Keras, any backend)

The framework-specific steps sit behind hepbench.mlpf.engines.
"""
