"""Deterministic generator of events in the published Delphes MLPF format.

`synthesize("ttbar", 2000, seed=1, out_dir=...)` writes 20 files of 100 events. Each file has its
own random stream derived from (seed, process, file index), so files are byte-identical whatever
the number of parallel jobs, and any one file can be regenerated alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from hepbench.mlpf.data.delphes import Event, write_file
from hepbench.mlpf.data.format import EVENTS_PER_FILE, PROCESSES, synthetic_name
from hepbench.mlpf.data.synth.detector import simulate
from hepbench.mlpf.data.synth.physics import MEAN_PILEUP, generate_particles

# bz2 level 1 (100 kB blocks) compresses these float arrays to within a few % of level 9 and
# is markedly faster; readers do not care which level wrote a file.
COMPRESS_LEVEL = 1


def generate_event(rng: np.random.Generator, process: str, mean_pileup: float = MEAN_PILEUP) -> Event:
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; expected one of {PROCESSES}")
    return simulate(rng, generate_particles(rng, process, mean_pileup))


def file_rng(seed: int, process: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, PROCESSES.index(process), index]))


def write_synthetic_file(out_dir: str | os.PathLike, process: str, seed: int, index: int, events: int) -> Path:
    rng = file_rng(seed, process, index)
    path = Path(out_dir) / synthetic_name(process, seed, index)
    write_file(path, [generate_event(rng, process) for _ in range(events)], compresslevel=COMPRESS_LEVEL)
    return path


def synthesize(
    process: str,
    events: int,
    seed: int,
    out_dir: str | os.PathLike,
    jobs: int = 1,
    progress: Callable[[Path, int], None] | None = None,
) -> list[Path]:
    """Write `events` events of `process` as files of 100 events; returns the paths in order.

    `progress(path, events_in_file)` is called as each file is finished, in order.
    """
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; expected one of {PROCESSES}")
    if events <= 0:
        raise ValueError(f"the number of events must be positive, not {events}")
    if seed < 0:
        raise ValueError(f"the seed must be >= 0, not {seed}")
    if jobs <= 0:
        raise ValueError(f"the number of jobs must be positive, not {jobs}")
    sizes = [min(EVENTS_PER_FILE, events - start) for start in range(0, events, EVENTS_PER_FILE)]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tasks = [(out_dir, process, seed, i, n) for i, n in enumerate(sizes)]
    paths: list[Path] = []
    if jobs == 1 or len(tasks) == 1:
        for task in tasks:
            paths.append(write_synthetic_file(*task))
            if progress:
                progress(paths[-1], task[-1])
        return paths
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        for path, task in zip(pool.map(write_synthetic_file, *zip(*tasks)), tasks):
            paths.append(path)
            if progress:
                progress(path, task[-1])
    return paths
