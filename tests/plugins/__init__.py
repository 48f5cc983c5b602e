"""pytest plugins of the test suite: module_durations (each test module's total time, for CI's log)."""
