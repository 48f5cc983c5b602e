#!/usr/bin/env python
"""Speed of the host input pipeline over a built data set, in events/s, and its padding cost.

The pipeline must outrun training by a wide margin, or the benchmark would measure the input.
It needs no TensorFlow; every epoch reads (or, with --cache memory after the first, reuses) and
pads every event of the split.

    python benchmarks/pipeline_speed.py DATA_DIR [--split train] [--batch-size 2] [--cache none|memory]
        [--prefetch -1] [--read-threads N] [--epochs 2] [--bin-size 640] [--bucket-lookahead 8]
"""

from __future__ import annotations

import argparse
import time

from hepbench.mlpf.config import DataConfig
from hepbench.mlpf.data.pipeline import Batches, element_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--cache", default="none", choices=("none", "memory"))
    parser.add_argument("--prefetch", type=int, default=-1, help="batches built ahead (-1 auto, 0 none)")
    parser.add_argument("--read-threads", type=int, default=None, help="threads that build batches (default: auto)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bin-size", type=int, default=640)
    parser.add_argument(
        "--bucket-lookahead",
        type=int,
        default=DataConfig.bucket_lookahead,
        help="length bucketing's look-ahead in batches (0: none; benchmarks/padding.py compares them)",
    )
    args = parser.parse_args()

    for pad_to_max in (False, True):
        cfg = DataConfig(
            batch_size=args.batch_size,
            cache=args.cache,
            pad_to_max=pad_to_max,
            prefetch=args.prefetch,
            bucket_lookahead=args.bucket_lookahead,
        )
        batches = Batches(args.data_dir, args.split, cfg, bin_size=args.bin_size, read_threads=args.read_threads)
        threads = batches.read_threads if cfg.prefetch != 0 else 0  # without prefetch the consumer builds them
        for epoch in range(1, args.epochs + 1):
            events = real = padded = 0
            start = time.perf_counter()
            for batch in batches:
                events += len(batch["n_elements"])
                r, p = element_counts(batch)
                real, padded = real + r, padded + p
            seconds = time.perf_counter() - start
            print(
                f"pad_to_max={pad_to_max!s:5}  epoch {epoch}: {events / seconds:8.1f} events/s  "
                f"({events} events, prefetch {cfg.prefetch}, {threads} threads, look-ahead {cfg.bucket_lookahead}, "
                f"real elements {100 * real / padded:.1f} % of padded)",
                flush=True,
            )


if __name__ == "__main__":
    main()
