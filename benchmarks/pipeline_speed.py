#!/usr/bin/env python
"""Speed of the tf.data input pipeline over a built data set, in events/s, and its padding cost.

The pipeline must outrun training by a wide margin, or the benchmark would measure the input.

    python benchmarks/pipeline_speed.py TFDS_DIR [--split train] [--batch-size 2] [--cache none|memory]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from hepbench.mlpf.config import DataConfig  # noqa: E402
from hepbench.mlpf.data.pipeline import element_counts, events_in_batch, make_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--cache", default="none")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bin-size", type=int, default=640)
    args = parser.parse_args()

    for pad_to_max in (False, True):
        cfg = DataConfig(batch_size=args.batch_size, cache=args.cache, pad_to_max=pad_to_max)
        ds = make_dataset(args.data_dir, args.split, cfg, bin_size=args.bin_size)
        for epoch in range(1, args.epochs + 1):
            events = real = padded = 0
            start = time.perf_counter()
            for batch in ds:
                events += int(events_in_batch(batch))
                r, p = element_counts(batch)
                real, padded = real + int(r), padded + int(p)
            seconds = time.perf_counter() - start
            print(f"pad_to_max={pad_to_max!s:5}  epoch {epoch}: {events / seconds:8.1f} events/s  "
                  f"({events} events, real elements {100 * real / padded:.1f} % of padded)")


if __name__ == "__main__":
    main()
