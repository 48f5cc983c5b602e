"""A report as text: the score and how far to trust it, what ran where (and on which backend),
per-copy and per-window throughput tables, and the energy of the timed windows where measured.
The tables are hepbench.core.terminal's: framed on a terminal, plain columns in logs."""

from __future__ import annotations

import math
from typing import Any

from hepbench.core.terminal import Document, Table, plain_text

GIB = 2**30


def _copies(n) -> str:
    return f"{n} copy" if n == 1 else f"{n} copies"


def get(obj: Any, *keys: str | int) -> Any:
    """obj[k1][k2]..., or None where a level is missing or null (older and failed reports)."""
    for key in keys:
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return None
    return obj


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def sig(x: Any, digits: int = 4) -> str:
    """A number to `digits` significant digits without exponent (0.2601, 27.15, 1225); '-' if absent."""
    if not _is_number(x):
        return "-"
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def fixed(x: Any, decimals: int = 1, scale: float = 1.0) -> str:
    """x / scale with a fixed number of decimals (seconds, GiB); '-' if absent."""
    return f"{x / scale:.{decimals}f}" if _is_number(x) else "-"


def cpu_ranges(cpus: Any) -> str:
    """[0, 1, 2, 5] -> '0-2,5'; '-' when not pinned."""
    if not cpus:
        return "-"
    values = sorted(c for c in cpus if isinstance(c, int))
    parts: list[str] = []
    start = prev = values[0]
    for c in values[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)


def device_label(device: Any) -> str:
    """'cpu', or 'gpu 0 (NVIDIA H100 80GB HBM3)'; the CPU model is in the host line."""
    kind = get(device, "type") or "?"
    index, name = get(device, "index"), get(device, "name")
    label = kind if index is None else f"{kind} {index}"
    return f"{label} ({name})" if kind != "cpu" and name else label


def _headline(report: dict) -> list[str]:
    rep = report.get("report") or {}
    score = get(rep, "wl-scores", "train")
    if rep.get("status") == "ok" and _is_number(score):
        copies = get(report, "run_info", "copies")
        line = f"score: train = {sig(score)} events/s" + (f" (sum over {_copies(copies)})" if copies else "")
        stats = rep.get("wl-stats") or {}
        if stats:
            line += (
                f"; per copy avg {sig(stats.get('avg'))}, median {sig(stats.get('median'))}, "
                f"min {sig(stats.get('min'))}, max {sig(stats.get('max'))}"
            )
        throughput = rep.get("throughput") or {}
        return [line, *_trust(throughput), *filter(None, [utilisation_line(throughput)])]
    return [f"FAILED: {rep.get('log') or 'no log message'}"]


def percent(fraction: Any) -> str:
    """A fraction as a percentage with one decimal ('13.6'); '-' if absent."""
    return fixed(100 * fraction if _is_number(fraction) else None, 1)


def utilisation_line(throughput: Any) -> str | None:
    """'model FLOPs: 27.10 GFLOP/s, 13.6 % of the peak 200.0 GFLOP/s (fp32, 2 devices; SOURCE)', or the
    reason there is no share; None for reports from before report.throughput.model_flops_utilisation."""
    mfu = get(throughput, "model_flops_utilisation")
    if not isinstance(mfu, dict):
        return None
    line = f"model FLOPs: {sig(_scaled(throughput.get('flops_per_second'), 1e9))} GFLOP/s"
    if not _is_number(mfu.get("value")):
        return line + f"; share of the peak unknown ({mfu.get('reason') or 'no reason given'})"
    devices = mfu.get("devices")
    return (
        line + f", {percent(mfu['value'])} % of the peak {sig(_scaled(mfu.get('peak_flops_per_second'), 1e9))} "
        f"GFLOP/s ({mfu.get('precision') or '?'}, {devices} device{'' if devices == 1 else 's'}; "
        f"{mfu.get('source') or 'source unknown'})"
    )


def _scaled(x: Any, scale: float) -> float | None:
    return x / scale if _is_number(x) else None


def _trust(throughput: dict) -> list[str]:
    """'interval: 95 % 0.5249 to 0.5377 events/s (± 1.2 %); window rates CV 2.4 %; first window / later
    1.006; real elements 77.4 % of padded slots' (report.throughput; older reports lack the fields)."""
    if not isinstance(throughput, dict) or not any(
        k in throughput
        for k in ("confidence_interval", "window_cv_percent", "first_window_ratio", "real_element_fraction")
    ):
        return []
    ci = throughput.get("confidence_interval")
    if isinstance(ci, dict):
        level = ci.get("level")
        level_text = f"{fixed(100 * level, 0)} %" if _is_number(level) else "?"
        parts = [
            f"interval: {level_text} {sig(ci.get('low'))} to {sig(ci.get('high'))} events/s "
            f"(± {fixed(ci.get('half_width_percent'), 1)} %)"
        ]
    else:
        parts = ["interval: none (fewer than 2 windows per copy)"]
    parts.append(f"window rates CV {fixed(throughput.get('window_cv_percent'), 1)} %")
    parts.append(f"first window / later {fixed(throughput.get('first_window_ratio'), 3)}")
    fraction = throughput.get("real_element_fraction")
    parts.append(f"real elements {fixed(100 * fraction if _is_number(fraction) else None, 1)} % of padded slots")
    return ["; ".join(parts)]


def _backend_line(backend: dict) -> str:
    """'backend: jax 0.10.2 (keras 3.15.1), train step jax.jit; jaxlib 0.10.2'."""

    def text(v: Any) -> str:
        return "-" if v is None else str(v)

    name, version, keras = (text(backend.get(k)) for k in ("name", "version", "keras"))
    step = backend.get("compile") or "unknown (no engine started)"
    line = f"backend: {name} {version} (keras {keras}), train step {step}"
    others = [f"{k} {text(v)}" for k, v in backend.items() if k not in ("name", "version", "keras", "compile")]
    return line + ("; " + ", ".join(others) if others else "")


def _context(report: dict) -> list[str]:
    app, rep = report.get("app") or {}, report.get("report") or {}
    lines = [f"app: {app.get('name', 'mlpf-bmk')} {app.get('version', '?')}, containment {app.get('containment', '?')}"]
    bench = rep.get("benchmark") or {}
    if bench or rep.get("precision"):
        xla = {True: "on", False: "off"}.get(rep.get("jit_compile"), "?")
        lines.append(
            f"run: {_copies(bench.get('copies', '?'))} x {bench.get('threads_per_copy', '?')} threads each on "
            f"{bench.get('device', '?')}, {bench.get('windows', '?')} windows of {bench.get('events_per_window', '?')} "
            f"events, {bench.get('warmup_steps', '?')} warm-up steps; precision {rep.get('precision', '?')} "
            f"(fp32 matmul {rep.get('fp32_matmul', '?')}), XLA {xla}"
        )
    backend = rep.get("backend")
    if isinstance(backend, dict):
        lines.append(_backend_line(backend))
    ds = rep.get("dataset")
    if isinstance(ds, dict):
        origin = {True: "synthetic", False: "published"}.get(ds.get("synthetic"), "origin unknown")
        lines.append(
            f"dataset: {ds.get('name', '?')} {ds.get('version', '?')}, {origin}, checksum "
            f"{str(ds.get('checksum') or '-')[:12]}, {ds.get('train_events', '?')} train / "
            f"{ds.get('test_events', '?')} test events"
        )
    model = rep.get("model")
    if isinstance(model, dict):
        params = model.get("trainable_parameters")
        lines.append(
            f"model: {model.get('name', '?')}"
            + (f", {params:,} trainable parameters" if isinstance(params, int) else "")
        )
    sw = rep.get("software")
    if isinstance(sw, dict):
        lines.append("software: " + ", ".join(f"{k} {v if v is not None else '-'}" for k, v in sw.items()))
    host = rep.get("host")
    if isinstance(host, dict):
        gpus = host.get("gpus") or []
        gpu_text = (
            ", ".join(
                f"{g.get('name', '?')}"
                + (f" {fixed(g.get('memory_bytes'), 0, GIB)} GiB" if g.get("memory_bytes") else "")
                for g in gpus
                if isinstance(g, dict)
            )
            or "none"
        )
        runtime = host.get("gpu_runtime")  # GPU runs only
        if isinstance(runtime, dict):
            gpu_text += (
                f" ({runtime.get('runtime', '?')} {runtime.get('version') or '-'}, "
                f"driver {runtime.get('driver_version') or '-'})"
            )
        cores = host.get("physical_cores")
        lines.append(
            f"host: {host.get('cpu_model', '?')}, {host.get('logical_cpus', '?')} logical CPUs"
            + (f" ({cores} physical cores)" if cores else "")
            + f", {host.get('usable_cpus', '?')} usable, "
            f"{fixed(host.get('memory_bytes'), 1, GIB)} GiB, {host.get('machine', '?')}; GPUs: {gpu_text}"
        )
    timing = rep.get("timing")
    if isinstance(timing, dict):
        lines.append(
            f"time: {timing.get('start', '?')} to {timing.get('end', '?')} ({fixed(timing.get('wall_seconds'), 0)} s)"
        )
    return lines


COPY_HEADERS = (
    "copy",
    "device",
    "cpus",
    "threads",
    "events",
    "seconds",
    "events/s",
    "mean step s",
    "compile s",
    "warm shapes",
    "val events/s",
    "GFLOP/s",
    "MFU %",
    "peak host GiB",
    "status",
)


def _count(items: Any) -> str:
    """How many shapes were warmed before the clock started; '-' when the report does not say."""
    return str(len(items)) if isinstance(items, list) else "-"


def _copy_row(copy: dict) -> list[str]:
    train = copy.get("train") or {}
    return [
        str(copy.get("copy", "?")),
        device_label(copy.get("device")),
        cpu_ranges(copy.get("cpus")),
        str(copy.get("threads", "-")),
        str(train.get("events", "-")),
        fixed(train.get("seconds"), 1),
        sig(train.get("events_per_second")),
        fixed(train.get("mean_step_seconds"), 3),
        fixed(copy.get("compile_seconds"), 1),
        _count(get(copy, "warmup", "shapes")),
        sig(get(copy, "validation", "events_per_second")),
        fixed(train.get("flops_per_second"), 1, 1e9),
        percent(get(copy, "model_flops_utilisation", "value")),
        fixed(copy.get("peak_host_memory_bytes"), 2, GIB),
        str(copy.get("status", "?")),
    ]


WINDOW_HEADERS = ("window", "events", "seconds", "events/s", "real elem/s", "padded elem/s", "GFLOP/s", "MFU %", "loss")


def _window_row(w: dict, peak: Any = None) -> list[str]:
    """A window's row; MFU % is its FLOP/s over its copy's peak (`peak`, FLOP/s)."""
    flops = w.get("flops_per_second")
    share = flops / peak if _is_number(flops) and _is_number(peak) and peak > 0 else None
    return [
        str(w.get("window", "?")),
        str(w.get("events", "-")),
        fixed(w.get("seconds"), 1),
        sig(w.get("events_per_second")),
        sig(w.get("real_elements_per_second")),
        sig(w.get("padded_elements_per_second")),
        fixed(flops, 1, 1e9),
        percent(share),
        sig(w.get("loss")),
    ]


ENERGY_HEADERS = ("source", "kind", "domain", "status", "joules", "mean W", "windows", "path or reason")


def _energy_source_row(src: dict) -> list[str]:
    measured = src.get("status") == "measured"
    where = src.get("path") if measured else src.get("reason")
    windows = src.get("windows")
    return [
        str(src.get("name") or "?"),
        str(src.get("kind") or "-"),
        str(src.get("domain") or "-"),
        str(src.get("status") or "?"),
        sig(src.get("joules")),
        sig(src.get("mean_watts")),
        str(len(windows)) if isinstance(windows, list) else "-",
        str(where or "-"),
    ]


def _energy_window_table(sources: list[dict]) -> Table | None:
    """Joules per timed window (rows) and measured source (columns); None when no source has windows."""
    measured = [s for s in sources if s.get("status") == "measured" and isinstance(s.get("windows"), list)]
    per_source = [{w.get("window"): w for w in s["windows"] if isinstance(w, dict)} for s in measured]
    windows = sorted({k for m in per_source for k in m if isinstance(k, int)})
    if not windows:
        return None
    headers = ["window"] + [f"{s.get('name') or '?'} J" for s in measured]
    rows = [[str(n)] + [sig(get(m, n, "joules")) for m in per_source] for n in windows]
    return Table(headers, rows, left=0, indent=2)


def energy_line(energy: Any) -> str | None:
    """'energy: measured, 1234 J in 56.70 s (21.76 W mean), 0.01234 events/J (...)', or why it is unavailable;
    None for reports from before the energy block."""
    if not isinstance(energy, dict):
        return None
    if energy.get("status") != "measured":
        return f"energy: unavailable ({energy.get('reason') or 'no reason given'})"
    return (
        f"energy: measured, {sig(energy.get('joules'))} J in {sig(energy.get('seconds'))} s "
        f"({sig(energy.get('mean_watts'))} W mean), {sig(energy.get('events_per_joule'))} events/J "
        f"(every measured source, timed windows only)"
    )


def energy_document(energy: Any) -> list[str | Table]:
    """The energy block: its summary line, a table of its sources and the joules of each window."""
    line = energy_line(energy)
    if line is None:
        return []
    doc: list[str | Table] = ["", line]
    sources = [s for s in energy.get("sources") or [] if isinstance(s, dict)]
    if sources:
        doc += ["energy sources:", Table(ENERGY_HEADERS, [_energy_source_row(s) for s in sources], left=4, indent=2)]
        windows = _energy_window_table(sources)
        if windows is not None:
            doc += ["energy per window:", windows]
    return doc


def numerics_line(numerics: Any) -> str | None:
    """'numerics: passed (fp32): loss 5.523 on the device, 5.523 on the host CPU in float32; gradient
    norm ...; relative differences 0 and 2e-08 (tolerances 0.0001 and 0.001)', or why nothing was
    compared; None for reports from before report.numerics."""
    if not isinstance(numerics, dict):
        return None
    status, kind = numerics.get("status") or "?", numerics.get("arithmetic") or "?"
    device, host, diff = (numerics.get(k) or {} for k in ("device", "host", "relative_difference"))
    if not device or not host:
        return f"numerics: {status} ({numerics.get('reason') or 'no reason given'})"
    tolerance = numerics.get("tolerance") or {}

    def g(x: Any) -> str:
        return f"{x:.3g}" if _is_number(x) else "-"

    return (
        f"numerics: {status} ({kind}): loss {sig(device.get('loss'), 7)} on the device, "
        f"{sig(host.get('loss'), 7)} on the host CPU in float32; gradient norm {sig(device.get('grad_norm'), 7)} "
        f"and {sig(host.get('grad_norm'), 7)}; relative differences {g(diff.get('loss'))} and "
        f"{g(diff.get('grad_norm'))} (tolerances {g(tolerance.get('loss'))} and {g(tolerance.get('grad_norm'))})"
    )


def report_document(report: dict) -> Document:
    """The whole report as lines and tables; tolerates nulls and missing sections."""
    doc: list[str | Table] = [*_headline(report), *_context(report)]
    doc += filter(None, [numerics_line(get(report, "report", "numerics"))])
    copies = [c for c in get(report, "report", "copies") or [] if isinstance(c, dict)]
    if copies:
        doc += ["", "copies:", Table(COPY_HEADERS, [_copy_row(c) for c in copies], left=3, indent=2)]
        doc += [f"  copy {c.get('copy', '?')}: {c.get('log')}" for c in copies if c.get("log") not in (None, "ok")]
    for c in copies:
        windows = [w for w in c.get("windows") or [] if isinstance(w, dict)]
        if not windows:
            continue
        doc += [
            "",
            f"copy {c.get('copy', '?')} windows ({device_label(c.get('device'))}):",
            Table(
                WINDOW_HEADERS,
                [_window_row(w, get(c, "model_flops_utilisation", "peak_flops_per_second")) for w in windows],
                left=0,
                indent=2,
            ),
        ]
    doc += energy_document(get(report, "report", "energy"))
    return doc


def format_report(report: dict) -> str:
    """The whole report as plain text (what `report show` prints when not on a terminal)."""
    return plain_text(report_document(report))
