"""The CLI speaks one vocabulary (package issue 3): every flag has help text that states its default, every command
has an example, one spelling per concept, and old spellings still work with a one-line deprecation note."""
from __future__ import annotations

import argparse

import pytest

from conftest import run_cli
from nas.cli import build_parser


def _commands(parser, prefix=("nas",)):
    """(command words, its parser) for every command that runs (a leaf of the subcommand tree)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, sub in action.choices.items():
            yield from _commands(sub, prefix + (name,))


COMMANDS = list(_commands(build_parser()))
IDS = [" ".join(words) for words, _ in COMMANDS]



@pytest.mark.parametrize("words,parser", COMMANDS, ids=IDS)
def test_a_flag_whose_dest_is_an_api_name_shows_a_plain_metavar(words, parser):
    """The API argument is the option's dest (`--latency-budget` -> latency_budget_ms); the usage line still says
    `--latency-budget MS`, not the dest in capitals."""
    shown = []
    for a in parser._actions:
        if not a.option_strings or a.help == argparse.SUPPRESS or a.nargs == 0 or a.metavar is not None:
            continue
        long = next((o for o in a.option_strings if o.startswith("--")), a.option_strings[0])
        if a.dest != long.lstrip("-").replace("-", "_"):
            shown.append(f"{long} {a.dest.upper()}")
    assert not shown, f"{' '.join(words)}: give these a metavar: {shown}"

@pytest.mark.parametrize("words,parser", COMMANDS, ids=IDS)
def test_every_flag_has_help_with_its_default(words, parser):
    missing, no_default = [], []
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) or a.help == argparse.SUPPRESS:
            continue
        name = "/".join(a.option_strings) or a.dest
        if not a.help:
            missing.append(name)
        elif a.option_strings and not isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)) \
                and not a.required and "default" not in a.help and "required" not in a.help.lower():
            no_default.append(name)
    assert not missing, f"{' '.join(words)}: no help text for {missing}"
    assert not no_default, f"{' '.join(words)}: help does not state the default for {no_default}"


@pytest.mark.parametrize("words,parser", COMMANDS, ids=IDS)
def test_every_command_shows_an_example(words, parser):
    assert parser.epilog and "example" in parser.epilog.lower() and " ".join(words) in parser.epilog, \
        f"{' '.join(words)}: add an example to its help (epilog)"


@pytest.mark.parametrize("old, new", [
    (["score", "--list"], ["proxies", "list"]),
])
def test_old_spellings_still_work_with_one_note(capsys, old, new):
    rc, out, err = run_cli(capsys, *old)
    rc_new, out_new, err_new = run_cli(capsys, *new)
    assert rc == rc_new == 0 and out == out_new and not err_new
    assert err.count("\n") == 1 and "deprecated" in err and " ".join(new) in err


def test_the_old_table_flag_reads_as_device(capsys):
    from nas.paths import SHIPPED_TABLES_DIR

    rc, out, err = run_cli(capsys, "lut", "predict", "--table", SHIPPED_TABLES_DIR / "raspi4.csv", "--space", "fbnet-c100",
                           "--arch", "k3_e1|" * 21 + "k3_e1")
    assert rc == 0 and "total:" in out and "--table is deprecated, use --device" in err
