"""What every workload shares, with no imports from the rest of hepbench.

checks           checks of a library call's parameters (ParameterError naming the parameter)
cliargs          argparse types: positive_int, non_negative_int, finite_float, positive_float
devices          NVIDIA, AMD and Intel GPUs: the node's vendor, its GPUs, visibility variables, runtime
energy           energy of timed windows from powercap (RAPL), NVML and amdsmi counters
envelope         the HEPscore summary (app, run_info, report), its validation and its files
errors           the errors the CLI turns into a message and an exit code; require_extra
files            atomic writes, write_json (no NaN), the writable-directory check
hostinfo         host CPU/memory/GPUs, package versions, containment, bmk_checksum
hyperparameters  the study hyperparameters: config name, CLI option, CSV column, range
progress         rich's progress bar on a terminal, plain lines in logs
schema           the reports' JSON Schemas: load, validate, readable violations
terminal         documents of lines and tables through rich: framed on a terminal, plain in logs
stats            HEPscore's statistics block (wl-stats)
timestamps       now_iso and the Stopwatch behind every report's timing block
"""
