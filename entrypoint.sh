#!/usr/bin/env bash
# mlpf-bmk: the HEP-workloads driver (the image's ENTRYPOINT and %runscript).
#
# HEPscore starts the image with `-W [--key value ...]` and reads <resultsdir>/mlpf_summary.json;
# this script maps those options onto `hepbench run` (or, with `--workload qsvr`, onto
# `hepbench qsvr bench`, which writes <resultsdir>/qsvr_summary.json; with `--workload hpo`, onto
# `hepbench hpo bench`, which writes <resultsdir>/hpo_summary.json). Under Apptainer (--contain --cleanenv) the
# environment is empty, the image read-only and $HOME possibly unwritable: every variable the run
# needs is set here, and nothing is written outside the results directory and /tmp.
set -uo pipefail

HEPBENCH_HOME=${HEPBENCH_HOME:-/opt/hepbench}
export PATH="${HEPBENCH_HOME}/venv/bin:/usr/local/bin:/usr/bin:/bin"
export LANG=C.UTF-8 LC_ALL=C.UTF-8
export TMPDIR=${TMPDIR:-/tmp}
# Keras's, TFDS's and matplotlib's files: never in the image, never in a site's shared $HOME. One
# folder per uid: HEPscore's `-B /tmp` makes /tmp the host's, shared by every user, and a folder
# another user made is not writable (and their keras.json would be read). A path that is not our
# own folder (another owner, a symlink) gives a fresh private one instead.
HOME="${TMPDIR}/mlpf-bmk-home-$(id -u)"
if ! mkdir -p -m 700 "${HOME}" 2>/dev/null || [[ -L "${HOME}" || ! -O "${HOME}" || ! -w "${HOME}" ]]; then
  HOME=$(mktemp -d "${TMPDIR}/mlpf-bmk-home-$(id -u).XXXXXX") || { echo "$(basename "$0"): cannot create a home folder under ${TMPDIR}" >&2; exit 1; }
fi
export HOME
export KERAS_HOME="${HOME}/.keras" MPLCONFIGDIR="${HOME}/.matplotlib" TFDS_DATA_DIR="${HOME}/tfds"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if [[ -z "${HEPBENCH_DATA_DIR:-}" && -d "${HEPBENCH_HOME}/data/tfds" ]]; then
  export HEPBENCH_DATA_DIR="${HEPBENCH_HOME}/data/tfds"   # the subset baked into the image
fi
HEPBENCH_BIN=${HEPBENCH_BIN:-hepbench}

usage() {
  cat <<EOF
Usage: $(basename "$0") [-W] [-w DIR] [-c N] [-t N] [-e N] [-n N] [-M cpu|gpu] [-b BACKEND] [-d]
                     [-m MODE] [-x "EXTRA ..."] [--workload mlpf|qsvr|hpo] [-h]

mlpf-bmk: MLPF (CMS machine-learned particle flow) training throughput for HEPscore.
Writes mlpf_summary.json (score: wl-scores.train, training events/s summed over copies),
inputs.log and version.json into the results directory. No arguments give a valid default run.

  -W                    write the summary directly into the results directory (always done)
  -w, --resultsdir DIR  results directory (default: /results)
  -c, --copies N        independent copies side by side (disjoint CPU sets / one GPU each); default 1
  -t, --threads N       framework threads per copy (default: the copy's share of the CPUs)
  -e, --events N        training events per copy in each timed window (hepbench's defaults.yaml,
                        bench.cpu/gpu_events_per_window: 12 on a CPU, 10000 on a GPU)
  -n, --ncores N        use only N of the available cores
  -M MODE               device: cpu, gpu or auto (default: auto, a GPU if one is visible)
  -b, --backend NAME    the engine of the mlpf workload: tensorflow (default, the reference), jax or
                        torch, the same Keras 3 model on each; the image must hold it (BACKENDS)
  -d, --debug           verbose output (TensorFlow logging, the command that runs)
  -m, --mop MODE        working files: all (remove, default), custom (remove), none (keep in RESULTSDIR/mlpf-work)
  -x, --extra-args ARGS more 'hepbench run' options, as one word ("--windows 5 --precision bf16")
                        or as the words that follow it (-x --windows 5)
      --workload NAME   mlpf (default), qsvr or hpo
                        qsvr: 'hepbench qsvr bench', timed QSVR fits (score: wl-scores.fits_per_second)
                        into qsvr_summary.json; one copy on one thread (-c and -t must be 1, -M cpu
                        or auto), -e N sets the number of timed fits, -x passes 'hepbench qsvr bench'
                        options (--fits, --seed, --sampler, --data)
                        hpo: 'hepbench hpo bench', a timed hyperparameter search, into
                        hpo_summary.json; one search (-c must be 1) of one-CPU trials (-t must be 1),
                        -M cpu or auto, -e N sets the number of trials (--trials), -n N the CPUs of
                        the search (--num-cpus), -x passes 'hepbench hpo bench' options
                        (--cpus-per-trial, --seed, ...)
  -h, --help            this help
Environment: HEPBENCH_DATA_DIR (built delphes_pf data set; default: the one in the image).
EOF
}

fail_usage() {
  echo "$(basename "$0"): $1" >&2
  usage >&2
  exit 2
}

is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

need_value() {  # option, remaining argument count
  [[ "$2" -ge 2 ]] || fail_usage "option $1 needs a value"
}

# Every option the driver itself knows: extra arguments split over several words end at the next one.
is_driver_option() {
  case "$1" in
    -W|-w|--resultsdir|-c|--copies|-t|--threads|-e|--events|-n|--ncores|-M|-b|--backend|-d|--debug|-m|--mop|\
    -x|--extra-args|--workload|-h|--help) return 0 ;;
    *) return 1 ;;
  esac
}

resultsdir=/results copies="" threads="" events="" ncores="" device=auto backend="" debug=0 mop=all workload=mlpf
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -W) shift ;;
    -w|--resultsdir) need_value "$1" $#; resultsdir=$2; shift 2 ;;
    -c|--copies) need_value "$1" $#; is_count "$2" || fail_usage "$1 must be a positive integer, not '$2'"; copies=$2; shift 2 ;;
    -t|--threads) need_value "$1" $#; is_count "$2" || fail_usage "$1 must be a positive integer, not '$2'"; threads=$2; shift 2 ;;
    -e|--events) need_value "$1" $#; is_count "$2" || fail_usage "$1 must be a positive integer, not '$2'"; events=$2; shift 2 ;;
    -n|--ncores) need_value "$1" $#; is_count "$2" || fail_usage "$1 must be a positive integer, not '$2'"; ncores=$2; shift 2 ;;
    -M) need_value "$1" $#
        case "$2" in cpu|gpu|auto) device=$2 ;; *) fail_usage "-M must be cpu, gpu or auto, not '$2'" ;; esac
        shift 2 ;;
    -b|--backend) need_value "$1" $#
        case "$2" in tensorflow|jax|torch) backend=$2 ;; *) fail_usage "$1 must be tensorflow, jax or torch, not '$2'" ;; esac
        shift 2 ;;
    -d|--debug) debug=1; shift ;;
    -m|--mop) need_value "$1" $#
        case "$2" in all|custom|none) mop=$2 ;; *) fail_usage "$1 must be all, custom or none, not '$2'" ;; esac
        shift 2 ;;
    -x|--extra-args)
        need_value "$1" $#
        shift
        read -r -a words <<< "$1"   # one word holding several options
        extra+=("${words[@]}")
        shift
        while [[ $# -gt 0 ]] && ! is_driver_option "$1"; do extra+=("$1"); shift; done ;;
    --workload) need_value "$1" $#
        case "$2" in
          mlpf|qsvr|hpo) workload=$2 ;;
          *) fail_usage "--workload must be mlpf, qsvr or hpo, not '$2'" ;;
        esac
        shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) fail_usage "unknown option '$1'" ;;
  esac
done

# The backend chooses the mlpf engine; qsvr and hpo have none to choose, so asking for one is refused.
[[ -z "${backend}" || "${workload}" == mlpf ]] || fail_usage "-b/--backend applies to the mlpf workload, not '${workload}'"
if [[ "${workload}" == qsvr ]]; then
  # One process annealing on one thread: a request for more cannot be honoured, so it is refused
  # (HEPscore would otherwise score a run that is not the one its config asked for).
  [[ -z "${copies}" || "${copies}" == 1 ]] || fail_usage "--workload qsvr runs one copy; -c must be 1, not '${copies}'"
  [[ -z "${threads}" || "${threads}" == 1 ]] || fail_usage "--workload qsvr runs on one thread; -t must be 1, not '${threads}'"
  [[ "${device}" != gpu ]] || fail_usage "--workload qsvr runs on the CPU; -M must be cpu or auto, not 'gpu'"
  cmd=("${HEPBENCH_BIN}" qsvr bench --resultsdir "${resultsdir}")
  [[ -n "${events}" ]] && cmd+=(--fits "${events}")
elif [[ "${workload}" == hpo ]]; then
  # One search whose trials each take one CPU (more: -x --cpus-per-trial); refused like qsvr's.
  [[ -z "${copies}" || "${copies}" == 1 ]] || fail_usage "--workload hpo runs one search; -c must be 1, not '${copies}'"
  [[ -z "${threads}" || "${threads}" == 1 ]] || fail_usage "--workload hpo runs one-CPU trials; -t must be 1, not '${threads}' (-x \"--cpus-per-trial N\" for more)"
  [[ "${device}" != gpu ]] || fail_usage "--workload hpo runs on the CPU; -M must be cpu or auto, not 'gpu'"
  cmd=("${HEPBENCH_BIN}" hpo bench --resultsdir "${resultsdir}")
  [[ -n "${events}" ]] && cmd+=(--trials "${events}")
  [[ -n "${ncores}" ]] && cmd+=(--num-cpus "${ncores}")
else
  cmd=("${HEPBENCH_BIN}" run --resultsdir "${resultsdir}" --device "${device}")
  [[ -n "${backend}" ]] && cmd+=(--backend "${backend}")
  [[ -n "${copies}" ]] && cmd+=(--copies "${copies}")
  [[ -n "${threads}" ]] && cmd+=(--threads "${threads}")
  [[ -n "${events}" ]] && cmd+=(--events "${events}")
  [[ -n "${ncores}" ]] && cmd+=(--ncores "${ncores}")
  [[ "${mop}" == none ]] && cmd+=(--keep-work)
fi
cmd+=("${extra[@]}")
export HEPBENCH_EXTRA_ARGUMENTS="${extra[*]}"   # recorded as run_info.extra_arguments
if [[ "${debug}" == 1 ]]; then
  export TF_CPP_MIN_LOG_LEVEL=0
  echo "mlpf-bmk (${workload}): ${cmd[*]}" >&2
fi
# exec: SIGTERM from the container runtime reaches hepbench, which stops the copies and reports.
exec "${cmd[@]}"
