"""What every workload shares, with no imports from the rest of hepbench."""
