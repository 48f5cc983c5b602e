#!/usr/bin/env python
"""Padding cost of the input pipeline's batches, with and without length bucketing: real elements
as a share of padded slots, and how many distinct padded lengths (compiled shapes) the batches have.

Computed from the built set's element-count table alone (no record is read), for one worker's
pass over the split, as hepbench.mlpf.data.pipeline.Batches forms it:

- for each look-ahead (data.bucket_lookahead, in batches; 0 = no bucketing) at the model's bin size: the
  share of real elements, the distinct padded lengths, the batches that mix lengths, and the share
  in windows of --window-events events (the first window, and the lowest and highest of all);
- the bound: every event padded alone to its own multiple of the bin size;
- the same for finer padding quanta (--quanta): what padding each event to a multiple of q < bin
  size (a ragged last LSH bin, which the model does not have) would give, as an estimate.

    python benchmarks/padding.py [DATA_DIR] [--split train] [--batch-size 2] [--bin-size 640]
        [--lookaheads 0,2,4,8,16,32,64] [--quanta 64,128,320] [--window-events 12] [--shuffle-buffer 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from hepbench.core.errors import HepbenchError
from hepbench.mlpf.config import BenchConfig, DataConfig
from hepbench.mlpf.data.bucketing import bucketed, event_lengths
from hepbench.mlpf.data.built import default_data_dir, require_built
from hepbench.mlpf.data.lengths import read_element_counts
from hepbench.mlpf.data.pipeline import Batches, shuffled


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def index_batches(counts: np.ndarray, cfg: DataConfig, quantum: int) -> list[list[int]]:
    """The first pass's batches of one worker (the pipeline's index stream), with lengths in `quantum`."""
    order = np.arange(len(counts))
    if cfg.shuffle_buffer > 0:
        order = shuffled(order, cfg.shuffle_buffer, np.random.default_rng([cfg.seed, 0]))
    lengths = event_lengths(counts, cfg.max_elements, quantum)
    return list(bucketed(order, lengths, cfg.batch_size, cfg.bucket_lookahead * cfg.batch_size))


def figures(counts: np.ndarray, batches: list[list[int]], cfg: DataConfig, quantum: int, window: int) -> dict:
    real = np.minimum(counts, cfg.max_elements)
    lengths = event_lengths(counts, cfg.max_elements, quantum)
    batch_real = np.array([real[b].sum() for b in batches])
    batch_padded = np.array([len(b) * lengths[b].max() for b in batches])
    per_window = max(1, window // cfg.batch_size)
    shares = [
        batch_real[k : k + per_window].sum() / batch_padded[k : k + per_window].sum()
        for k in range(0, len(batches) - per_window + 1, per_window)
    ] or [batch_real.sum() / batch_padded.sum()]
    return {
        "share": batch_real.sum() / batch_padded.sum(),
        "lengths": len({int(lengths[b].max()) for b in batches}),
        "mixed": sum(len(set(lengths[b].tolist())) > 1 for b in batches),
        "first": shares[0],
        "low": min(shares),
        "high": max(shares),
        "padded": int(batch_padded.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=None, help="default: $HEPBENCH_DATA_DIR or work/tfds-s0")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--bin-size", type=int, default=640)
    parser.add_argument("--max-elements", type=int, default=DataConfig.max_elements)
    parser.add_argument("--lookaheads", type=_ints, default=[0, 2, 4, 8, 16, 32, 64], help="in batches")
    parser.add_argument("--quanta", type=_ints, default=[64, 128, 320], help="finer padding quanta to estimate")
    parser.add_argument(
        "--window-events",
        type=int,
        default=BenchConfig.cpu_events_per_window,
        help="events per window (default: bench.cpu_events_per_window)",
    )
    parser.add_argument("--shuffle-buffer", type=int, default=0)
    args = parser.parse_args()

    data_dir = args.data_dir or default_data_dir()
    try:
        counts = read_element_counts(require_built(data_dir), args.split)
    except HepbenchError as e:  # no data set, or one without its element-count table
        sys.exit(f"padding.py: {e}")
    base = DataConfig(max_elements=args.max_elements, batch_size=args.batch_size, shuffle_buffer=args.shuffle_buffer)
    real = int(np.minimum(counts, args.max_elements).sum())
    print(
        f"{data_dir} {args.split}: {len(counts)} events, {real / len(counts):.0f} real elements per event "
        f"(after truncation to {args.max_elements}); batch size {args.batch_size}, "
        f"windows of {args.window_events} events; shuffle buffer {args.shuffle_buffer}"
    )

    for quantum in [args.bin_size, *args.quanta]:
        alone = event_lengths(counts, args.max_elements, quantum)
        note = "the model's bin size" if quantum == args.bin_size else "estimate: ragged last bin, not the model's"
        print(
            f"\npadding quantum {quantum} ({note}): bound (every event alone) {100 * real / alone.sum():.2f} % "
            f"real, {len(set(alone.tolist()))} distinct lengths"
        )
        for lookahead in args.lookaheads:
            cfg = dataclasses.replace(base, bucket_lookahead=lookahead)
            batches = index_batches(counts, cfg, quantum)
            f = figures(counts, batches, cfg, quantum, args.window_events)
            if quantum == args.bin_size:  # the pipeline itself plans the same batches
                planned = Batches(data_dir, args.split, cfg, bin_size=quantum).shapes()
                assert f["padded"] == sum(events * length for events, length in planned), "pipeline disagrees"
            print(
                f"  look-ahead {lookahead:3d} batches ({lookahead * args.batch_size:3d} events): "
                f"real {100 * f['share']:6.2f} % of padded slots, {f['lengths']:2d} distinct lengths, "
                f"{f['mixed']:4d} of {len(batches)} batches mix lengths; windows: first {100 * f['first']:.1f} %, "
                f"lowest {100 * f['low']:.1f} %, highest {100 * f['high']:.1f} %"
            )


if __name__ == "__main__":
    main()
