"""The benchmark report (mlpf_summary.json) and its views.

summary  the copies' results → one validated report, written with version.json and inputs.log
show     a report as text tables
plot     per-window training throughput of every copy as a PNG (matplotlib)
mllog    MLPerf-style :::MLLOG lines for a finished run
scaling  the weak-scaling summary of `hepbench scale` as a table and a PNG
cli      `hepbench report validate|show|plot`
"""
