"""nas.cli.common: API errors read in the command line's terms."""
from nas.cli.common import flag_error, flag_of, print_table
from nas.errors import NasError


def test_argument_becomes_its_flag_by_mapping_or_by_name():
    flags, dests = {"latency_budget_ms": "--latency-budget"}, {"trials", "latency_budget", "allow_estimate"}
    assert flag_of("latency_budget_ms", flags, dests) == "--latency-budget"
    assert flag_of("trials", flags, dests) == "--trials"
    assert flag_of("unknown_thing", flags, dests) is None
    err = flag_error(NasError("must be >= 1, got 0", argument="trials"), flags, dests)
    assert str(err) == "--trials: must be >= 1, got 0"


def test_fix_mentions_of_api_arguments_become_flags():
    dests = {"allow_estimate", "latency_dtype", "study"}
    flags = {"study_name": "--study"}
    exc = NasError("table lacks rows", where="t.csv",
                   fix="pass allow_estimate=True, or price every layer at latency_dtype='fp32'; or a new study_name")
    text = str(flag_error(exc, flags, dests))
    assert text == ("t.csv: table lacks rows (fix: pass --allow-estimate, or price every layer at --latency-dtype "
                    "fp32; or a new --study)")
    plain = NasError("fitted at dtype int8", fix="load it with dtype='arch', or give data a name")
    assert str(flag_error(plain, {}, {"dtype", "data"})) == ("fitted at dtype int8 (fix: load it with --dtype arch, "
                                                              "or give data a name)")


def test_unknown_argument_keeps_the_api_name_and_where_wins():
    assert str(flag_error(NasError("bad", argument="scorer"), {}, set())) == "argument 'scorer': bad"
    assert str(flag_error(NasError("bad", where="f.yaml: name", argument="space"), {}, {"space"})) == "f.yaml: name: bad"


def test_print_table_aligns_columns(capsys):
    print_table(("a", "long header"), [("xyz", "1"), ("q", "22")])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["a    long header", "xyz  1", "q    22"]
