#!/usr/bin/env python
"""Speed of the event generator and of the published file format, in events/s.

Measures, in one run so the figures are comparable on a noisy machine:
  generate   physics + detector simulation only (one core)
  write      pickle + bz2 of the generated events into the published format (one core)
  synth      the whole `hepbench data synth` path on one core, and with --jobs N
  read       the safe reader: bz2 + restricted unpickling + validation (one core)

    python benchmarks/synth_speed.py [--events 100] [--jobs 2] [--process ttbar]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import hepbench.mlpf.data.synth as synth
from hepbench.mlpf.data.delphes import read_file, write_file


def rate(events: int, seconds: float) -> str:
    return f"{events / seconds:8.1f} events/s  ({1000 * seconds / events:6.1f} ms/event)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--process", default="ttbar", choices=("ttbar", "qcd"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = synth.file_rng(0, args.process, 0)
        t0 = time.perf_counter()
        events = [synth.generate_event(rng, args.process) for _ in range(args.events)]
        t_gen = time.perf_counter() - t0
        sizes = np.array([e.num_elements for e in events])

        t0 = time.perf_counter()
        write_file(tmp / "w.pkl.bz2", events, compresslevel=synth.COMPRESS_LEVEL)
        t_write = time.perf_counter() - t0
        megabytes = (tmp / "w.pkl.bz2").stat().st_size / 1e6

        t0 = time.perf_counter()
        read_file(tmp / "w.pkl.bz2")
        t_read = time.perf_counter() - t0

        t0 = time.perf_counter()
        synth.synthesize(args.process, args.events, seed=1, out_dir=tmp / "one")
        t_one = time.perf_counter() - t0

        many = max(args.events, 100 * args.jobs)  # one file per job at least
        t0 = time.perf_counter()
        synth.synthesize(args.process, many, seed=1, out_dir=tmp / "many", jobs=args.jobs)
        t_many = time.perf_counter() - t0

    print(
        f"{args.process}: {args.events} events, {sizes.mean():.0f} elements/event on average, "
        f"{megabytes / args.events * 1000:.0f} kB/event in the file"
    )
    print(f"generate (physics + detector, 1 core)  {rate(args.events, t_gen)}")
    print(f"write    (pickle + bz2, 1 core)        {rate(args.events, t_write)}")
    print(f"read     (safe reader, 1 core)         {rate(args.events, t_read)}")
    print(f"synth    (end to end, 1 core)          {rate(args.events, t_one)}")
    print(f"synth    (end to end, --jobs {args.jobs})        {rate(many, t_many)}")


if __name__ == "__main__":
    main()
