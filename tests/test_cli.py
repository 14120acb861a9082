import argparse

from isobench.cli import COMMANDS, build_parser


def test_every_subcommand_has_a_handler() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(COMMANDS)


def test_list_names_runtimes_workloads_and_presets(capsys) -> None:
    from isobench.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("docker-bridge", "gvisor", "vm", "records-api", "validator", "image", "seed-003"):
        assert name in out
