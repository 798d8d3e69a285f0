"""What a search is asked to do: every option checked before anything is created, one-line CLI errors."""
import pytest

from conftest import run_cli


@pytest.mark.parametrize("argv, message", [
    (["--space", "nope", "--device", "raspi4"], "unknown search space 'nope'"),
    (["--space", "fbnet-c100", "--device", "raspi5"], "raspi5"),
    (["--space", "mobilenet-c10", "--device", "raspi4"], "mobilenet-c10"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
     "cannot open storage"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--objectives", "proxy,speed"], "--objectives"),
])
def test_bad_search_input_is_one_line(tmp_path, capsys, argv, message):
    rc, _, err = run_cli(capsys, "search", *argv, "--trials", "2", "--proxy", "params", "--quiet",
                         *([] if "--storage" in argv else ["--storage", f"journal:///{tmp_path}/x.journal"]))
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_resolved_fills_defaults():
    from nas.proxies import DEFAULT_PROXY
    from nas.search import SearchConfig
    from nas.search.storage import DEFAULT_JOURNAL, DEFAULT_STORAGE

    cfg = SearchConfig(space="fbnet-c100", devices=["raspi4", "pixel3"]).resolved()
    assert (cfg.proxy, cfg.study, cfg.storage) == (DEFAULT_PROXY, "fbnet-c100-raspi4+pixel3", DEFAULT_STORAGE)
    assert SearchConfig(space="fbnet-c100", devices=["raspi4"], workers=2).resolved().storage == DEFAULT_JOURNAL


@pytest.mark.parametrize("options, argument, message", [
    ({"devices": []}, "devices", "at least one device"),
    ({"trials": 0}, "trials", "must be >= 1"),
    ({"sampler": "cmaes"}, "sampler", "unknown sampler 'cmaes'"),
    ({"objectives": ["proxy", "proxy"]}, "objectives", "bad objectives proxy,proxy"),
    ({"latency_budget_ms": -1.0}, "latency_budget_ms", "must be a positive number"),
    ({"proxy": "nope"}, "proxy", "unknown proxy 'nope'"),
])
def test_every_option_is_checked_and_names_its_field(options, argument, message):
    from nas.errors import NasError
    from nas.search import SearchConfig

    with pytest.raises(NasError, match=message) as err:
        SearchConfig(**{"space": "fbnet-c100", "devices": ["raspi4"], **options}).resolved()
    assert err.value.argument == argument and "--" not in str(err.value)
