"""Running a benchmark: the plan, the runner (the only module that knows the order of the stages),
one trial, signals, `isobench up`, calibration and suites."""
