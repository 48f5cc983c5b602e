#!/usr/bin/env python
"""How stable is the score? Runs the default benchmark (`hepbench run`) K times, one after the
other, and prints per run the score with its 95 % interval, the run's wall time and the report's
first-window ratio (window 1's rate over the later windows', docs/training.md); then over the
runs the mean score, the coefficient of variation (CV) of the run scores, the spread and CV of
every window's rate, the mean first-window ratio and the mean wall time, and a verdict against
the targets of issue 16:

    CV of the run scores <= 2 %, every run's wall time <= 180 s, every first window within 3 %

    python benchmarks/stability.py [--runs 5] [--json FILE] [--keep DIR] [HEPBENCH RUN OPTIONS]

Options it does not know go to every `hepbench run` (e.g. `--data-dir DIR`, `--set
bench.windows=5`; a `--` before them is allowed); `--resultsdir` is its own. Each run writes into
its own directory (a temporary one, or --keep DIR/run-N) with its output in run.log; the first
failed run ends the series. Exit 0 when every target is met, 1 when one is missed or a run failed.
Run it on a quiet machine: on a shared one the CV measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hepbench.core.files import write_json
from hepbench.core.stats import cv_percent

MAX_SCORE_CV_PERCENT = 2.0
MAX_WALL_SECONDS = 180.0
MAX_FIRST_WINDOW_DEVIATION = 0.03  # |first window's rate / the later windows' - 1|
OWN_OPTIONS = ("-w", "--resultsdir")


def run_figures(report: dict, wall_seconds: float) -> dict:
    """One run's figures from its mlpf_summary.json; a failed run keeps its log instead."""
    r = report["report"]
    if r["status"] != "ok":
        return {"status": "failed", "log": r["log"], "wall_seconds": wall_seconds}
    t = r["throughput"]
    interval = t.get("confidence_interval")
    return {
        "status": "ok",
        "score": r["wl-scores"]["train"],
        "half_width_percent": interval["half_width_percent"] if interval else None,
        "first_window_ratio": t.get("first_window_ratio"),
        "window_cv_percent": t.get("window_cv_percent"),
        "window_rates": [w["events_per_second"] for c in r["copies"] for w in c["windows"]],
        "wall_seconds": wall_seconds,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(runs: list[dict]) -> dict:
    """Over the successful runs: mean, CV (%) and extremes of the scores; min, max, spread
    ((max - min) / mean, %) and CV (%) of all their windows' rates; mean and worst first-window
    ratio (worst: farthest from 1); mean and longest wall time. None where there is nothing."""
    ok = [r for r in runs if r["status"] == "ok"]
    scores = [r["score"] for r in ok]
    windows = [w for r in ok for w in r["window_rates"]]
    ratios = [r["first_window_ratio"] for r in ok if r["first_window_ratio"] is not None]
    walls = [r["wall_seconds"] for r in runs]
    window_mean = _mean(windows)
    return {
        "runs": len(runs),
        "failed_runs": len(runs) - len(ok),
        "mean_score": _mean(scores),
        "score_cv_percent": cv_percent(scores),
        "min_score": min(scores, default=None),
        "max_score": max(scores, default=None),
        "windows": len(windows),
        "window_min": min(windows, default=None),
        "window_max": max(windows, default=None),
        "window_spread_percent": 100 * (max(windows) - min(windows)) / window_mean if window_mean else None,
        "window_cv_percent": cv_percent(windows),
        "mean_first_window_ratio": _mean(ratios),
        "worst_first_window_ratio": max(ratios, key=lambda x: abs(x - 1), default=None),
        "mean_wall_seconds": _mean(walls),
        "max_wall_seconds": max(walls, default=None),
    }


def verdict(summary: dict) -> tuple[bool, str]:
    """(every target met, the verdict line). A target that cannot be judged (a run failed, fewer
    than 2 runs or windows) is missed."""
    cv, wall, worst = summary["score_cv_percent"], summary["max_wall_seconds"], summary["worst_first_window_ratio"]
    deviation = abs(worst - 1) if worst is not None else None
    checks = [  # (name, value, limit, value in words, limit in words)
        ("score CV", cv, MAX_SCORE_CV_PERCENT, f"{_fmt(cv, '.2f')} %", f"{MAX_SCORE_CV_PERCENT:g} %"),
        ("longest wall", wall, MAX_WALL_SECONDS, f"{_fmt(wall, '.0f')} s", f"{MAX_WALL_SECONDS:g} s"),
        (
            "first window off by",
            deviation,
            MAX_FIRST_WINDOW_DEVIATION,
            f"{_fmt(100 * deviation if deviation is not None else None, '.2f')} %",
            f"{100 * MAX_FIRST_WINDOW_DEVIATION:g} %",
        ),
    ]
    met = [value is not None and value <= limit for _, value, limit, _, _ in checks]
    parts = [
        f"{name} {text} {'<=' if m else 'NOT <='} {limit_text}"
        for m, (name, _, _, text, limit_text) in zip(met, checks)
    ]
    if summary["failed_runs"]:
        parts.append(f"{summary['failed_runs']} run(s) failed")
    ok = all(met) and summary["failed_runs"] == 0
    return ok, f"verdict: {'PASS' if ok else 'FAIL'} ({'; '.join(parts)})"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def run_line(index: int, total: int, run: dict) -> str:
    if run["status"] != "ok":
        return f"run {index}/{total}: FAILED after {run['wall_seconds']:.0f} s: {run['log']}"
    return (
        f"run {index}/{total}: score {run['score']:.4g} events/s ± {_fmt(run['half_width_percent'], '.2f')} %, "
        f"wall {run['wall_seconds']:.0f} s, first window / later {_fmt(run['first_window_ratio'], '.3f')}, "
        f"window CV {_fmt(run['window_cv_percent'], '.2f')} %"
    )


def summary_lines(s: dict) -> list[str]:
    return [
        f"over {s['runs']} runs: mean score {_fmt(s['mean_score'], '.4g')} events/s, "
        f"CV {_fmt(s['score_cv_percent'], '.2f')} % "
        f"(min {_fmt(s['min_score'], '.4g')}, max {_fmt(s['max_score'], '.4g')})",
        f"{s['windows']} windows: {_fmt(s['window_min'], '.4g')} to {_fmt(s['window_max'], '.4g')} events/s "
        f"(spread {_fmt(s['window_spread_percent'], '.2f')} % of the mean), CV {_fmt(s['window_cv_percent'], '.2f')} %",
        f"first window / later: mean {_fmt(s['mean_first_window_ratio'], '.3f')}, "
        f"worst {_fmt(s['worst_first_window_ratio'], '.3f')}",
        f"wall time: mean {_fmt(s['mean_wall_seconds'], '.0f')} s, longest {_fmt(s['max_wall_seconds'], '.0f')} s",
    ]


def one_run(results: Path, run_args: list[str]) -> dict:
    """`hepbench run` into `results` (its output in results/run.log); the run's figures."""
    results.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "hepbench", "run", "--resultsdir", str(results), *run_args]
    start = time.perf_counter()
    with open(results / "run.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    summary = results / "mlpf_summary.json"
    if not summary.is_file():  # refused before it ran (a usage error): nothing to measure
        tail = (results / "run.log").read_text().strip().splitlines()[-1:] or ["no output"]
        return {"status": "failed", "log": f"exit {code}, no report: {tail[0]}", "wall_seconds": wall}
    return run_figures(json.loads(summary.read_text()), wall)


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--runs", type=int, default=5, help="benchmark runs, one after the other (default 5)")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the runs, the summary and the verdict here"
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep each run's results in DIR/run-N")
    args, run_args = parser.parse_known_args(argv)
    run_args = [a for a in run_args if a != "--"]
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, not {args.runs}")
    own = [a for a in run_args if a.split("=")[0] in OWN_OPTIONS]
    if own:
        parser.error(f"{own[0]} is set by this script (each run gets its own directory; see --keep)")
    return args, run_args


def main(argv: list[str] | None = None) -> int:
    args, run_args = parse(sys.argv[1:] if argv is None else argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hepbench-stability-") as tmp:
        base = args.keep or Path(tmp)
        print(f"{args.runs} x hepbench run {' '.join(run_args)}".rstrip(), flush=True)
        for i in range(1, args.runs + 1):
            runs.append(one_run(base / f"run-{i}", run_args))
            print(run_line(i, args.runs, runs[-1]), flush=True)
            if runs[-1]["status"] != "ok":  # the next runs would fail alike: the verdict is FAIL already
                break
    summary = summarise(runs)
    ok, line = verdict(summary)
    print("\n".join(summary_lines(summary) + [line]))
    if args.json is not None:
        write_json(
            args.json,
            {
                "run_arguments": run_args,
                "runs": runs,
                "summary": summary,
                "pass": ok,
                "targets": {
                    "score_cv_percent": MAX_SCORE_CV_PERCENT,
                    "wall_seconds": MAX_WALL_SECONDS,
                    "first_window_deviation": MAX_FIRST_WINDOW_DEVIATION,
                },
            },
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
