"""The text view: the score, each copy's rate and window rows; failures; sparse reports show what they have."""

from __future__ import annotations

import pytest

from hepbench.mlpf.report.show import cpu_ranges, device_label, format_report, sig


def test_ok_report_shows_score_copies_and_windows(ok_report):
    text = format_report(ok_report)
    lines = text.splitlines()
    assert lines[0].startswith("score: train = 0.5313 events/s (sum over 2 copies)")
    assert "containment none" in text
    assert "delphes_pf 1.1.0, synthetic, checksum de8ffb08a1b2," in text  # first 12 hex digits only
    assert "de8ffb08a1b2c" not in text
    assert "tensorflow 2.18.1" in text and "cuda -" in text
    assert "backend: tensorflow 2.18.1 (keras 3.15.1), train step tf.function" in lines
    assert "; precision fp32 (fp32 matmul highest), XLA off" in text
    assert "AMD EPYC 7B13 64-Core Processor" in text and "24.0 GiB" in text and "GPUs: none" in text
    rows = {line.split()[0]: line.split() for line in lines if line.startswith("  0 ") or line.startswith("  1 ")}
    assert rows["0"][6] == "0.2601" and rows["1"][6] == "0.2712"  # events/s column
    assert rows["0"][4] == "72" and rows["0"][-1] == "ok"
    assert text.count("copy 0 windows") == 1 and text.count("copy 1 windows") == 1
    window_rows = [line.split() for line in lines if line.startswith("       ")]
    assert [r[3] for r in window_rows] == ["0.2606", "0.2600", "0.2597", "0.2730", "0.2724", "0.2682"]
    assert window_rows[0][6] == "27.1"  # GFLOP/s
    assert window_rows[0][7] == "24.7"  # MFU %: 27.15 GFLOP/s of copy 0's 110 GFLOP/s ceiling
    assert rows["0"][11:13] == ["27.1", "24.6"] and rows["1"][11:13] == ["28.2", "25.7"]  # GFLOP/s, MFU %
    assert rows["0"][9] == "2" and rows["1"][9] == "-"  # shapes warmed before the clock (copy 1: not recorded)


def test_ok_report_shows_the_interval_the_spread_and_the_padding(ok_report):
    lines = format_report(ok_report).splitlines()
    assert lines[1] == (
        "interval: 95 % 0.5249 to 0.5377 events/s (± 1.2 %); window rates CV 2.4 %; "
        "first window / later 1.006; real elements 77.4 % of padded slots"
    )
    ok_report["report"]["throughput"].update(confidence_interval=None, first_window_ratio=None)
    assert (
        format_report(ok_report)
        .splitlines()[1]
        .startswith("interval: none (fewer than 2 windows per copy); window rates CV 2.4 %; first window / later -;")
    )
    for key in (
        "confidence_interval",
        "window_cv_percent",
        "first_window_ratio",
        "real_element_fraction",
        "model_flops_utilisation",
    ):
        del ok_report["report"]["throughput"][key]  # a report from before these fields
    assert format_report(ok_report).splitlines()[1].startswith("app:")


def test_the_share_of_the_peak_follows_the_interval_or_says_why_there_is_none(ok_report):
    assert format_report(ok_report).splitlines()[2] == (
        "model FLOPs: 27.10 GFLOP/s, 12.3 % of the peak 220.0 GFLOP/s (fp32, 2 devices; measured: each CPU copy's "
        "own matmul ceiling before its clock, summed over the copies (copies[].ceiling))"
    )
    ok_report["report"]["throughput"]["model_flops_utilisation"].update(
        value=None, peak_flops_per_second=None, reason="device 'NVIDIA T4' is not in the peaks table"
    )
    assert format_report(ok_report).splitlines()[2] == (
        "model FLOPs: 27.10 GFLOP/s; share of the peak unknown (device 'NVIDIA T4' is not in the peaks table)"
    )


def test_failed_report_shows_the_failure(failed_report):
    text = format_report(failed_report)
    assert text.splitlines()[0] == f"FAILED: {failed_report['report']['log']}"
    assert "train =" not in text
    assert "copy 0: stopped: another copy failed" in text
    assert "copy 1: training loss became nan in window 2, step 5 (events seen 34)" in text
    assert "0.2730" in text  # the completed window of copy 1 is still shown


def test_sparse_reports_show_what_they_have_and_mark_the_rest_missing():
    nothing = ["FAILED: no log message", "app: mlpf-bmk ?, containment ?"]  # no status "ok": no result
    assert format_report({}).splitlines() == nothing
    assert format_report({"report": None}).splitlines() == nothing
    lines = format_report(
        {"app": {}, "run_info": {}, "report": {"status": "ok", "wl-scores": {"train": 5}, "copies": [{"copy": 0}]}}
    ).splitlines()
    assert lines[:2] == ["score: train = 5.000 events/s", "app: mlpf-bmk ?, containment ?"]
    assert lines[-1].split() == ["0", "?", *["-"] * 12, "?"]  # its number; no device, figures or status
    copies = [{"train": None, "windows": None, "device": None}, "junk"]
    lines = format_report({"report": {"status": "ok", "copies": copies, "host": {"gpus": None}}}).splitlines()
    assert lines[0] == "FAILED: no log message"  # "ok" without a score is no result either
    assert "host: ?, ? logical CPUs, ? usable, - GiB, ?; GPUs: none" in lines
    assert lines[-2].split()[0] == "copy" and lines[-1].split() == ["?", "?", *["-"] * 12, "?"]  # "junk" left out


def test_the_backend_line_names_the_framework_its_compilation_and_its_other_packages(ok_report):
    ok_report["report"]["backend"] = {
        "name": "jax",
        "version": "0.10.2",
        "keras": "3.15.1",
        "compile": "jax.jit",
        "jaxlib": "0.10.2",
    }
    assert "backend: jax 0.10.2 (keras 3.15.1), train step jax.jit; jaxlib 0.10.2" in format_report(ok_report)
    ok_report["report"]["backend"] = {"name": "torch", "version": "2.13.0", "keras": None, "compile": None}
    assert "backend: torch 2.13.0 (keras -), train step unknown (no engine started)" in format_report(ok_report)


def test_gpu_report(ok_report):
    for i, c in enumerate(ok_report["report"]["copies"]):
        c["device"] = {"type": "gpu", "name": "NVIDIA H100 80GB HBM3", "index": i}
        c["cpus"] = None
    ok_report["report"]["host"]["gpus"] = [{"name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85520809984, "index": 0}]
    text = format_report(ok_report)
    assert "gpu 1 (NVIDIA H100 80GB HBM3)" in text
    assert "GPUs: NVIDIA H100 80GB HBM3 80 GiB" in text
    ok_report["report"]["host"]["gpu_runtime"] = {
        "vendor": "amd",
        "runtime": "hip",
        "version": "6.2.2",
        "driver_version": None,
        "source": "amd-smi",
    }
    assert "GPUs: NVIDIA H100 80GB HBM3 80 GiB (hip 6.2.2, driver -)" in format_report(ok_report)


@pytest.mark.parametrize(
    "value, text",
    [
        (0.26016, "0.2602"),
        (0.5313, "0.5313"),
        (1224.7, "1225"),
        (27.15, "27.15"),
        (123456.0, "123456"),
        (0.0001234, "0.0001234"),
        (0, "0"),
        (None, "-"),
        (float("nan"), "-"),
        (True, "-"),
    ],
)
def test_sig(value, text):
    assert sig(value) == text


def test_cpu_ranges_and_device_label():
    assert cpu_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert cpu_ranges([3]) == "3"
    assert cpu_ranges(None) == "-" and cpu_ranges([]) == "-"
    assert device_label({"type": "cpu", "name": "AMD EPYC", "index": None}) == "cpu"
    assert device_label(None) == "?"


def test_the_numerics_check_is_one_line_with_both_sides_or_why_nothing_was_compared(ok_report):
    assert (
        "numerics: passed (fp32): loss 58.19383 on the device, 58.19383 on the host CPU in float32; gradient "
        "norm 412.7734 and 412.7734; relative differences 0 and 0 (tolerances 0.0005 and 0.001)"
        in format_report(ok_report).splitlines()
    )
    n = ok_report["report"]["numerics"]
    n.update(status="failed", device={"loss": 58.7757669, "grad_norm": None})
    n["relative_difference"] = {"loss": 0.01, "grad_norm": None}
    assert (
        "numerics: failed (fp32): loss 58.77577 on the device, 58.19383 on the host CPU in float32; gradient "
        "norm - and 412.7734; relative differences 0.01 and - (tolerances 0.0005 and 0.001)"
    ) in format_report(ok_report)
    n.update(status="not run", reason="the run ended before the check", device=None, host=None)
    assert "numerics: not run (the run ended before the check)" in format_report(ok_report)
    del ok_report["report"]["numerics"]  # a report from before the check
    assert "numerics:" not in format_report(ok_report)
