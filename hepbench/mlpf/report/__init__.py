"""The benchmark report (mlpf_summary.json): its schema, validation, text view and throughput plot."""
