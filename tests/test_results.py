import json
from pathlib import Path

import pytest

from isobench.results import ResultsError, RunStore, Sample, TrialRecord, atomic_write_json


def _trial(pos: int) -> TrialRecord:
    return TrialRecord(
        arm="native", trial=pos, position=pos, round=pos, status="ok",
        started_at=1.0, ended_at=2.0, startup_s=0.3,
        load={"metrics": {"http_reqs": {"count": 10, "rate": 5.0}}},
    )


def test_trials_and_samples_round_trip(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.write_manifest({"run_id": "x"})
    store.append_trial(_trial(0), [Sample("cpu_percent", 12.5, "%", 3.0, {"runtime": "native"})])
    store.append_trial(_trial(1))
    assert [t.position for t in store.trials()] == [0, 1]
    assert store.trials()[0].metric("http_reqs", "rate") == 5.0
    assert store.samples()[0].metadata["runtime"] == "native"
    assert store.read_manifest()["version"] == 1


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.append_trial(_trial(0))
    with store.trials_path.open("a") as fh:
        fh.write('{"runtime": "nat')  # a crash mid-write
    assert len(store.trials()) == 1
    store.append_trial(_trial(1))  # a resumed run appends after the torn line
    assert [t.position for t in store.trials()] == [0, 1]


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_metric_reads_k6_nested_and_flat_shapes() -> None:
    nested = _trial(0)
    nested.load = {"metrics": {"http_reqs": {"type": "counter", "values": {"rate": 7.5}}}}
    assert nested.metric("http_reqs", "rate") == 7.5
    assert nested.metric("http_reqs", "count") is None
    assert _trial(0).metric("http_reqs", "rate") == 5.0
    assert _trial(0).metric("missing", "rate") is None


def test_repair_drops_samples_of_a_trial_cut_short(tmp_path: Path) -> None:
    """A crash (or ENOSPC) after a trial's samples but before its trial line: resume must not
    keep those samples beside the re-run's."""
    from isobench.results import RunStore, Sample, TrialRecord

    store = RunStore(tmp_path / "run")
    done = TrialRecord("native", 0, 0, 0, "ok", 1.0, 2.0)
    store.append_trial(done, [Sample("cpu", 1.0, "%", 1.0, {"trial": 0})])
    from isobench.results import append_jsonl

    append_jsonl(store.samples_path, [Sample("cpu", 9.0, "%", 3.0, {"trial": 1}).to_json()] * 5)
    with store.samples_path.open("a") as fh:
        fh.write('{"metric": "cpu", "val')  # torn mid-write
    assert store.repair() > 0
    assert [s.value for s in store.samples()] == [1.0]
    assert store.trials()[0].samples_span == [0, store.samples_path.stat().st_size]
    assert store.repair() == 0


def test_damaged_trials_file_is_one_line_error(tmp_path: Path) -> None:
    import pytest

    from isobench.results import ResultsError, RunStore

    store = RunStore(tmp_path / "run")
    store.trials_path.write_bytes(b"\x00\x01binary\n{\"runtime\": \"torn")
    with pytest.raises(ResultsError, match="line 1 is not a JSON record"):
        store.trials()
    store.trials_path.write_text('{"runtime": "torn')
    assert store.trials() == []


def test_environment_values_stay_out_of_the_manifest(tmp_path: Path) -> None:
    from isobench.results import RunStore
    from isobench.run.orchestrator import REDACTED, redact_env

    data = {"workload_options": {"env": ["API_TOKEN=s3cr3t", "MODE=x"]},
            "arms": {"a": {"workload_options": {"env": {"K": "v"}}}}, "k6_env": {"PW": "p"}}
    shown = redact_env(data)
    assert "s3cr3t" not in str(shown) and "API_TOKEN" in str(shown) and REDACTED in str(shown)
    assert shown["arms"]["a"]["workload_options"]["env"] == {"K": REDACTED}
    store = RunStore(tmp_path / "run")
    store.write_private_benchfile(data)
    assert store.private_benchfile_path.stat().st_mode & 0o077 == 0
    store.write_manifest({"benchfile": shown})
    assert store.read_benchfile() == data  # --resume keeps the real values


V1_TRIAL_LINE = (
    '{"version": 1, "runtime": "native-b", "trial": 0, "position": 3, "round": 1, '
    '"status": "ok", "started_at": 1.0, "ended_at": 2.0, "startup_s": 0.25, "load": {}, '
    '"telemetry": {}, "facts": {"runtime": "native"}, "error": null, "warmup": false, '
    '"samples_span": [0, 0]}\n'
)
"""A trials.jsonl line as isobench wrote it before trials format 2: the arm was ``runtime``."""


def test_an_old_trials_file_reads_runtime_as_the_arm(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.trials_path.write_text(V1_TRIAL_LINE + V1_TRIAL_LINE.replace('"version": 1, ', ""))
    old, unversioned = store.trials()
    assert old.arm == "native-b" and old.runtime_name == "native"
    assert (old.position, old.round, old.startup_s) == (3, 1, 0.25)
    assert unversioned == old  # a line without a version is version 1
    store.append_trial(_trial(4))  # a resumed old run appends version-2 lines beside them
    written = json.loads(store.trials_path.read_text().splitlines()[-1])
    assert written["version"] == 2 and written["arm"] == "native" and "runtime" not in written
    assert [t.arm for t in store.trials()] == ["native-b", "native-b", "native"]


def test_a_newer_trials_file_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.trials_path.write_text(V1_TRIAL_LINE.replace('"version": 1', '"version": 99'))
    with pytest.raises(ResultsError, match="version 99 is newer"):
        store.trials()
