#!/usr/bin/env bash
# The GPU check: hepbench's JAX and PyTorch engines on a machine that has a GPU, PyTorch and JAX but
# no TensorFlow and no network (benchmarks/README.md: how to prepare it and what it prints).
#
#   benchmarks/gpu_check.sh [--device gpu|cpu] [--wheels DIR] [--work DIR] [--backends torch,torch-compiled,jax]
#                           [--train-events N] [--test-events N] [--events N] [--no-pad] [-- RUN OPTIONS...]
#
# 1. installs hepbench (--no-deps, from this checkout) and the wheels that gpu_check_wheels.sh
#    downloaded into a target folder, without network; the machine's own torch, jax and numpy stay;
# 2. generates a small data set (hepbench data synth) and builds it (hepbench data build, which
#    needs no TensorFlow);
# 3. runs `hepbench run --backend B --device gpu` for each backend, each into its own results folder
#    (torch-compiled: --backend torch with its step compiled, --set train.compile=true);
# 4. prints, per backend, events/s, achieved TFLOP/s against the GPU's bf16, tf32 and fp32 dense
#    peaks, the report's model FLOPs utilisation, peak device memory and the summary's path
#    (benchmarks/gpu_check_report.py).
#
# --device gpu (default) runs hepbench's GPU defaults (batches of 32, bf16, events cached in memory;
# docs/training.md, "The GPU workload") on a shorter workload: 6 windows of 2,000 events (--events)
# after 2 warm-up steps, 448 validation events, the reference model, on 1,024 + 224 events (whole
# batches of 32 only) each padded to 6,400 elements: one shape per step, one compilation of each
# jitted JAX step (--no-pad keeps the benchmark's padding to the next multiple of 640, several
# shapes). --device cpu runs a tiny model on a tiny data set, to test the check itself on a CPU. RUN
# OPTIONS go to every `hepbench run` (--precision bf16, --set ...).
# Environment: PYTHON (default python3), the interpreter that has torch and jax.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}

device=gpu wheels="" work="" backends=torch,torch-compiled,jax train_events="" test_events="" events="" pad=1
run_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device|--wheels|--work|--backends|--train-events|--test-events|--events)
      [[ $# -ge 2 ]] || { echo "gpu_check: $1 needs a value" >&2; exit 2; }
      case "$1" in
        --device) device=$2 ;; --wheels) wheels=$2 ;; --work) work=$2 ;; --backends) backends=$2 ;;
        --train-events) train_events=$2 ;; --test-events) test_events=$2 ;; --events) events=$2 ;;
      esac
      shift 2 ;;
    --no-pad) pad=0; shift ;;
    --) shift; run_extra=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown option '$1' (hepbench run's options go after --)" >&2; exit 2 ;;
  esac
done
case "$device" in gpu|cpu) ;; *) echo "gpu_check: --device must be gpu or cpu, not '$device'" >&2; exit 2 ;; esac
for b in ${backends//,/ }; do
  case "$b" in jax|torch|torch-compiled|tensorflow) ;;
    *) echo "gpu_check: --backends: '$b' is not jax, torch, torch-compiled or tensorflow" >&2; exit 2 ;; esac
done
tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")') \
  || { echo "gpu_check: no Python at '$PY' (set PYTHON)" >&2; exit 2; }
wheels=${wheels:-$ROOT/work/gpu-check/wheels-$tag}
work=${work:-$ROOT/work/gpu-check/run-$device}
compgen -G "$wheels/*.whl" >/dev/null \
  || { echo "gpu_check: no wheels in $wheels: run benchmarks/gpu_check_wheels.sh --python-version ${tag:2:1}.${tag:3} first" >&2; exit 2; }

# The workloads. GPU: hepbench's own GPU defaults with a fifth of the events per window (the check
# runs three within about 6 minutes), on a data set of 1,024 + 224 events (well under a minute to
# generate and build on 16 cores: data synth makes about 11.5 events/s per core). Both splits and
# the validation events are whole batches of 32: a partial last batch would be a second shape,
# compiled again. CPU: a tiny model (the test suite's) on 64-element events, one window of one step,
# so that the check itself is tested in a minute or two. Every run starts from a new install and
# data set: what it made before goes.
rm -rf "$work/site" "$work/manual" "$work/tfds" "$work/results" "$work/mpl" "$work/keras"
mkdir -p "$work"
if [[ "$device" == gpu ]]; then
  train_events=${train_events:-1024} test_events=${test_events:-224}
  workload=(--set bench.gpu_validation_events=448)
  [[ -n "$events" ]] || events=2000
else
  train_events=${train_events:-20} test_events=${test_events:-10}
  cat > "$work/tiny.yaml" <<'EOF'
model: {bin_size: 16, distance_dim: 8, ffn_dist_hidden_dim: 8, output_dim: 16, decoder_hidden_dim: 16,
        num_graph_layers_id: 1, num_graph_layers_reg: 1}
data: {max_elements: 64}
bench: {windows: 1, warmup_steps: 1, cpu_validation_events: 2, ceiling_seconds: 0.2}
EOF
  workload=(--config "$work/tiny.yaml")
  [[ -n "$events" ]] || events=2
fi
[[ -n "$events" ]] && workload+=(--events "$events")
[[ "$pad" == 1 ]] && workload+=(--set data.pad_to_max=true)

elapsed() { echo "$((SECONDS - $1)) s"; }
site=$work/site
export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export MPLCONFIGDIR=$work/mpl KERAS_HOME=$work/keras
unset KERAS_BACKEND  # --backend chooses

echo "gpu_check: Python $("$PY" -c 'import platform; print(platform.python_version())') ($PY), device $device"
start=$SECONDS
# One pip run: the wheels and hepbench itself (built from the checkout in an isolated environment
# whose setuptools comes from the wheel folder), on the machine's Python (3.11-3.13: requires-python).
"$PY" -m pip install -qq --no-index --find-links "$wheels" --no-deps --no-cache-dir --no-compile \
  --disable-pip-version-check --target "$site" "$wheels"/*.whl "$ROOT" \
  || { echo "gpu_check: the install failed" >&2; exit 1; }
"$PY" - <<'EOF' || exit 1
import importlib.util
have = {m: importlib.util.find_spec(m) is not None for m in ("torch", "jax", "tensorflow")}
print("gpu_check: frameworks here: " + ", ".join(f"{m} {'yes' if ok else 'no'}" for m, ok in have.items()))
EOF
echo "gpu_check: installed in $(elapsed $start) into $site"

start=$SECONDS
hb=("$PY" -m hepbench)
"${hb[@]}" data synth --process ttbar --events "$train_events" --seed 0 --out "$work/manual" --jobs "$(nproc)" >/dev/null \
  && "${hb[@]}" data synth --process qcd --events "$test_events" --seed 0 --out "$work/manual" --jobs "$(nproc)" >/dev/null \
  && "${hb[@]}" data build --manual-dir "$work/manual" --data-dir "$work/tfds" >"$work/data.log" 2>&1 \
  || { tail -20 "$work/data.log" >&2; echo "gpu_check: making the data set failed (log: $work/data.log)" >&2; exit 1; }
echo "gpu_check: data set of $train_events + $test_events events in $(elapsed $start)"

summaries=() failed=()
for b in ${backends//,/ }; do
  start=$SECONDS
  out=$work/results/$b
  mkdir -p "$out"
  compiled=()
  if [[ "$b" == torch-compiled ]]; then
    # Inductor on the GPU (Triton kernels, CUDA graphs); on the CPU aot_eager, which tests the check's
    # compiled path without a minute of C++ compilation per shape.
    compiled=(--set train.compile=true)
    [[ "$device" == cpu ]] && compiled+=(--set train.compile_backend=aot_eager)
  fi
  echo "gpu_check: hepbench run --backend ${b%-compiled} --device $device ${workload[*]} ${compiled[*]} ${run_extra[*]}"
  "${hb[@]}" run --backend "${b%-compiled}" --device "$device" --data-dir "$work/tfds" --resultsdir "$out" \
    "${workload[@]}" "${compiled[@]}" "${run_extra[@]}" 2>&1 | tee "$out/run.log" | sed "s/^/  $b: /"
  rc=${PIPESTATUS[0]}
  echo "gpu_check: $b finished in $(elapsed $start) (exit $rc)"
  [[ -f "$out/mlpf_summary.json" ]] && summaries+=("$out/mlpf_summary.json")
  [[ "$rc" == 0 ]] || failed+=("$b")
done

[[ ${#summaries[@]} -gt 0 ]] && "$PY" "$ROOT/benchmarks/gpu_check_report.py" "${summaries[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "gpu_check: FAILED: ${failed[*]} (logs: $work/results/<backend>/run.log)" >&2
  exit 1
fi
echo "gpu_check: all backends ran (${backends})"
