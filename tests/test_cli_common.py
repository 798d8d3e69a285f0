"""nas.cli.common: API errors read in the command line's terms. An API argument is named as the dest of the option
that gives it, so the command's own parser is the whole mapping (no table of flags)."""
import argparse
import dataclasses
import inspect

import pytest

from nas.cli import build_parser
from nas.cli.common import command_parser, flag_error, option_flags, print_table
from nas.cli.vocabulary import Deprecated
from nas.errors import NasError


def parser_of(*words):
    """The parser of ``nas <words>``, found as main() finds it: by the subcommands a parse chose."""
    dests = ("command", "sub")
    return command_parser(build_parser(), argparse.Namespace(**dict(zip(dests, words))))


def test_the_flag_of_an_argument_is_its_options_first_long_spelling():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int)
    p.add_argument("-o", "--output")
    p.add_argument("--from", dest="sources", action="append")
    p.add_argument("--latency-budget", dest="latency_budget_ms", type=float)
    p.add_argument("--table", dest="trials", action=Deprecated, new="--trials")  # an old spelling: never shown
    p.add_argument("name", nargs="?")  # a positional gives no flag
    flags = option_flags(p)
    assert {k: flags[k] for k in ("trials", "output", "sources", "latency_budget_ms")} == {
        "trials": "--trials", "output": "--output", "sources": "--from", "latency_budget_ms": "--latency-budget"}
    assert "name" not in flags
    assert str(flag_error(NasError("must be >= 1, got 0", argument="trials"), p)) == "--trials: must be >= 1, got 0"
    assert str(flag_error(NasError("no table", argument="sources"), p)) == "--from: no table"


def test_fix_mentions_of_api_arguments_become_flags():
    p = argparse.ArgumentParser()
    for flag, dest in (("--allow-estimate", "allow_estimate"), ("--dtype", "dtypes"), ("--study", "study"),
                       ("--data", "data"), ("--output", "output")):
        p.add_argument(flag, dest=dest)
    exc = NasError("table lacks rows", where="t.csv",
                   fix="pass allow_estimate=True, or price every layer at dtypes=['fp32', 'int8']; or a new "
                       "study=NAME, e.g. output=x.csv")
    assert str(flag_error(exc, p)) == ("t.csv: table lacks rows (fix: pass --allow-estimate, or price every layer at "
                                       "--dtype fp32,int8; or a new --study NAME, e.g. --output x.csv)")
    # a bare name is translated only where it cannot be an ordinary word: it has a '_'
    plain = NasError("fitted at dtype int8", fix="load it with data='digits', or give data a name; allow_estimate")
    assert str(flag_error(plain, p)) == ("fitted at dtype int8 (fix: load it with --data digits, or give data a "
                                         "name; --allow-estimate)")


def test_unknown_argument_keeps_the_api_name_and_where_wins():
    p = argparse.ArgumentParser()
    p.add_argument("--space")
    assert str(flag_error(NasError("bad", argument="scorer"), p)) == "argument 'scorer': bad"
    assert str(flag_error(NasError("bad", where="f.yaml: name", argument="space"), p)) == "f.yaml: name: bad"


# every API argument that once needed a FLAGS entry (its name differed from the option's dest), per command
RENAMED = [
    (("lut", "predict"), "device", "--device"), (("lut", "predict"), "archs", "--archs"),
    (("lut", "show"), "device", "--device"),
    (("lut", "validate"), "device", "--device"), (("lut", "validate"), "archs", "--archs"),
    (("lut", "validate"), "calibrate", "--calibrate"),
    (("lut", "profile"), "space", "--space"), (("lut", "profile"), "archs", "--archs"),
    (("lut", "profile"), "dtypes", "--dtype"), (("lut", "profile"), "boundaries", "--boundaries"),
    (("lut", "adapt"), "space", "--space"), (("lut", "adapt"), "measured", "--measured"),
    (("lut", "adapt"), "sources", "--from"), (("lut", "adapt"), "n", "--measure-here"),
    (("lut", "fit"), "space", "--space"), (("lut", "fit"), "measured", "--measured"),
    (("lut", "suggest"), "sources", "--from"), (("lut", "suggest"), "n", "--n"),
    (("search",), "devices", "--device"), (("search",), "latency_budget_ms", "--latency-budget"),
    (("search",), "size_budget_mb", "--size-budget"), (("search",), "energy_budget_mj", "--energy-budget"),
    (("search",), "study", "--study"), (("search",), "proxy", "--proxy"), (("search",), "dtype", "--dtype"),
    (("pareto",), "study", "--study"), (("pareto",), "out_dir", "--out-dir"),
    (("export",), "space", "--space"), (("export",), "arch", "--arch"), (("export",), "study", "--study"),
    (("export",), "devices", "--device"), (("export",), "trial", "--trial"), (("export",), "out_dir", "--out-dir"),
    (("score",), "proxies", "--proxy"), (("score",), "archs", "--archs"), (("score",), "output", "--output"),
]


@pytest.mark.parametrize("words, argument, flag", RENAMED, ids=[f"{' '.join(w)}:{a}" for w, a, _ in RENAMED])
def test_each_api_argument_reads_as_its_commands_flag(words, argument, flag):
    err = flag_error(NasError("bad value", argument=argument, fix=f"e.g. {argument}=X"), parser_of(*words))
    assert str(err) == f"{flag}: bad value (fix: e.g. {flag} X)"


def _api(words):
    """The API each command calls, with the parameters no flag gives (objects, progress, options the CLI fixes)."""
    from nas.deploy import ExportConfig, target_from_arch, targets_from_study
    from nas.latency import load
    from nas.latency.fitted import fit_table
    from nas.latency.measure.profile import ProfileConfig, profile_space
    from nas.latency.measure.validate import validate
    from nas.latency.transfer.adapt import adapt
    from nas.latency.transfer.here import adapt_here
    from nas.latency.transfer.suggest import suggest
    from nas.proxies import Scorer
    from nas.search import SearchConfig
    from nas.search.report import write_report

    def fields(cls):
        return [f.name for f in dataclasses.fields(cls)]

    return {
        ("lut", "predict"): [(inspect.signature(load).parameters, {"calibrated"})],
        ("lut", "validate"): [(inspect.signature(validate).parameters, {"progress"})],
        ("lut", "profile"): [(inspect.signature(profile_space).parameters, {"config", "progress"}),
                             (fields(ProfileConfig), {"batch", "calib_samples", "seed"})],
        ("lut", "adapt"): [(inspect.signature(adapt).parameters, {"precision_split"}),
                           (inspect.signature(adapt_here).parameters, {"progress"})],
        ("lut", "fit"): [(list(inspect.signature(fit_table).parameters)[:3], set())],
        ("lut", "suggest"): [(inspect.signature(suggest).parameters, {"candidates"})],
        ("search",): [(fields(SearchConfig), {"_resolved"})],
        ("pareto",): [(inspect.signature(write_report).parameters, set())],
        ("export",): [(inspect.signature(target_from_arch).parameters, set()),
                      (inspect.signature(targets_from_study).parameters, set()),
                      (fields(ExportConfig), {"warmup", "repeats", "progress"})],
        ("score",): [(list(inspect.signature(Scorer).parameters), {"train_options"})],
    }[words]


@pytest.mark.parametrize("words", [("lut", "predict"), ("lut", "validate"), ("lut", "profile"), ("lut", "adapt"),
                                   ("lut", "fit"), ("lut", "suggest"), ("search",), ("pareto",), ("export",),
                                   ("score",)], ids=" ".join)
def test_every_api_argument_a_command_gives_is_named_as_its_option(words):
    """The rule itself: each argument of the API a command calls is the dest of one of its options (so an error
    naming it reads as that option), except the few no flag gives."""
    dests = set(option_flags(parser_of(*words)))
    for names, no_flag in _api(words):
        missing = [n for n in names if n not in dests and n not in no_flag]
        assert not missing, f"nas {' '.join(words)}: API argument(s) {missing} are no option's dest"


@pytest.mark.parametrize("argv, start", [
    (["lut", "adapt", "--space", "fbnet-c100", "--measured", "M", "--device-name", "x", "--from", "raspi5"],
     "nas: error: --from: unknown device 'raspi5'"),
    (["lut", "suggest", "--space", "fbnet-c100", "--n", "15", "--from", "raspi5", "-o", "OUT"],
     "nas: error: --from: unknown device 'raspi5'"),
    (["lut", "fit", "--space", "fbnet-c100", "--measured", "M", "--device-name", "x"], "nas: error: --measured: "),
    (["lut", "profile", "--space", "nas-bench-macro", "--device-name", "x", "--all", "--dtype", "fp16"],
     "nas: error: --dtype: unknown dtype 'fp16'"),
    (["lut", "profile", "--space", "nas-bench-macro", "--device-name", "x", "--all", "--boundaries"],
     "nas: error: --boundaries: precision boundaries"),
    (["lut", "validate", "--device", "raspi4", "--space", "fbnet-c100", "--archs", "M", "--calibrate"],
     "nas: error: --calibrate: "),
    (["search", "--space", "fbnet-c100", "--device", "raspi4", "--latency-budget", "-1", "--quiet"],
     "nas: error: --latency-budget: must be a positive number"),
    (["score", "--space", "nas-bench-macro", "--archs", "M", "--proxy", "nope", "-o", "OUT"],
     "nas: error: --proxy: unknown proxy 'nope'"),
    (["export", "--storage", "STORAGE", "--study", "nope", "--out-dir", "OUT"], "nas: error: --study: no study 'nope'"),
])
def test_renamed_arguments_fail_with_their_flag_on_the_command_line(tmp_path, capsys, argv, start):
    """End to end on a bad value: the library names its argument, the command line shows the flag."""
    from conftest import run_cli
    from nas.space import load_space

    measured = tmp_path / "m.csv"
    archs = load_space("fbnet-c100").sample_many(3, seed=0)
    space = load_space("fbnet-c100")
    measured.write_text("arch,latency_ms\n" + "".join(f"{space.format(a)},{1 + i}\n" for i, a in enumerate(archs)))
    if argv[0] == "score":
        measured.write_text("arch\n01202110\n")
    subs = {"M": str(measured), "OUT": str(tmp_path / "out"), "STORAGE": f"sqlite:///{tmp_path}/s.db"}
    argv = [subs.get(a, a) for a in argv]
    if argv[0] == "search":
        argv += ["--storage", f"journal:///{tmp_path}/s.journal", "--trials", "1"]
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2 and err.startswith(start) and "argument '" not in err, err


def test_print_table_aligns_columns(capsys):
    print_table(("a", "long header"), [("xyz", "1"), ("q", "22")])
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["a    long header", "xyz  1", "q    22"]
