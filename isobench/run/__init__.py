"""Running a benchmark: the plan, the orchestrator (the only module that knows the order of
the stages), one trial, signals, `isobench up`, calibration and suites."""
