#!/usr/bin/env bash
# Downloads, on a machine with network, the wheels that benchmarks/gpu_check.sh installs on a GPU
# machine that has PyTorch and JAX but no TensorFlow and no network (benchmarks/README.md).
#
#   benchmarks/gpu_check_wheels.sh [--python-version 3.12] [--dest DIR]
#
# What hepbench needs besides the frameworks: its own dependencies (pyproject.toml) and Keras,
# resolved for that Python on manylinux x86_64, less
#   - what the frameworks' installation provides and must keep its own version of: numpy, scipy,
#     ml-dtypes, opt-einsum, jax and jaxlib, torch, triton and the CUDA libraries, and torch's
#     sympy, networkx, jinja2, fsspec, filelock, typing-extensions;
#   - what the TensorFlow-free benchmark never imports: matplotlib (plots: hepbench report plot),
#     pyarrow (TFDS's Parquet files), pandas (mlperf-logging's compliance checker).
# Plus setuptools, so that hepbench itself builds from the checkout without network, and nvidia-ml-py
# (NVML, for the runs' energy block). Packages that
# PyPI has as source only (promise, which TFDS needs) are pure Python: built here into wheels. The wheels
# land in DIR (default work/gpu-check/wheels-cpXY, git-ignored); the list of them, with sizes, is
# printed at the end. Every wheel is one version of one package: the install takes them all.
set -euo pipefail
cd "$(dirname "$0")/.."

py_version=3.12 dest=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python-version) [[ $# -ge 2 ]] || { echo "$0: --python-version needs a value" >&2; exit 2; }
                      py_version=$2; shift 2 ;;
    --dest) [[ $# -ge 2 ]] || { echo "$0: --dest needs a value" >&2; exit 2; }
            dest=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "$0: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[[ "$py_version" =~ ^3\.[0-9]+$ ]] || { echo "$0: --python-version must look like 3.12, not '$py_version'" >&2; exit 2; }
tag=cp${py_version/./}
dest=${dest:-work/gpu-check/wheels-$tag}
PIP=${PIP:-python3 -m pip}

# Requirements: pyproject's dependencies and keras, less those the list above leaves out. Read with
# tomllib (Python 3.11+), so the pins stay where they are kept.
requirements=$(python3 - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
skip = {"numpy", "matplotlib"}
print("\n".join(d for d in deps if re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() not in skip))
print("setuptools>=68")
print("nvidia-ml-py>=12")  # NVML's energy counter: report.energy of the GPU runs (docs/energy.md)
EOF
)
# Provided by the framework installation, or never imported by the benchmark (see the header).
provided='^(numpy|scipy|ml[-_]dtypes|opt[-_]einsum|jax|jaxlib|jax[-_]cuda.*|torch|triton|nvidia[-_](?!ml[-_]py$).*|sympy|mpmath|networkx|jinja2|markupsafe|fsspec|filelock|typing[-_]extensions|matplotlib|pyarrow|pandas)$'

platforms=()
for n in 39 38 37 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17; do
  platforms+=(--platform "manylinux_2_${n}_x86_64")
done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Source-only, pure-Python requirements of the closure: their wheels (py3-none-any) are built here,
# and pip, asked for binaries only, finds them beside the index.
$PIP wheel -qq --no-deps -w "$work/built" "promise==2.3"
target=(--only-binary=:all: --python-version "$py_version" --implementation cp "${platforms[@]}"
        --find-links "$work/built")
printf '%s\n' "$requirements" > "$work/requirements.txt"
# The closure, resolved from metadata alone (nothing large is downloaded): pip's installation report.
$PIP install -qq --dry-run --ignore-installed --target "$work/none" "${target[@]}" \
  --report "$work/report.json" -r "$work/requirements.txt"
python3 - "$work/report.json" "$provided" > "$work/pins.txt" <<'EOF'
import json, re, sys
report, provided = json.load(open(sys.argv[1])), re.compile(sys.argv[2], re.I)
for item in report["install"]:
    name, version = item["metadata"]["name"], item["metadata"]["version"]
    if not provided.match(name):
        print(f"{name}=={version}")
EOF
mkdir -p "$dest"
# A folder of another resolution would hold two versions of a package: start from an empty one.
rm -f "$dest"/*.whl
$PIP download -qq --no-deps "${target[@]}" -d "$dest" -r "$work/pins.txt"
echo "gpu_check_wheels: $(ls "$dest"/*.whl | wc -l) wheels for Python $py_version in $dest ($(du -sh "$dest" | cut -f1)):"
ls -s --block-size=K "$dest" | sed 1d | sort -k2
