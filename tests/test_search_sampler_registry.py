"""nas.search.sampler_registry: one registry of samplers by name, read by the configuration, the API and the CLI."""
import argparse

import pytest

from nas.errors import NasError
from nas.search.sampler_registry import DEFAULT_SAMPLER, LEGACY_SAMPLER, SAMPLERS, make_sampler, sampler_name


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_each_registered_sampler_is_made_by_its_factory_and_named_back(name):
    sampler = make_sampler(name, seed=3, trials=200)
    assert type(sampler).__name__ == SAMPLERS[name].class_name
    assert sampler_name(sampler) == name


def test_the_defaults_are_registered_and_an_unknown_name_is_an_error_naming_the_argument():
    assert DEFAULT_SAMPLER in SAMPLERS and LEGACY_SAMPLER in SAMPLERS
    with pytest.raises(NasError, match=r"unknown sampler 'tpee' \(did you mean 'tpe'\?\)") as err:
        make_sampler("tpee")
    assert err.value.argument == "sampler" and all(name in err.value.fix for name in SAMPLERS)
    assert sampler_name(object()) == "object"  # another sampler is recorded by its class


def test_the_config_the_api_and_the_cli_read_the_registry():
    import nas.search
    from nas.cli import build_parser
    from nas.search import SearchConfig

    assert nas.search.SAMPLERS is SAMPLERS and nas.search.make_sampler is make_sampler
    with pytest.raises(NasError, match="unknown sampler 'cmaes'") as err:
        SearchConfig(space="fbnet-c100", devices=["raspi4"], sampler="cmaes").resolved()
    assert err.value.argument == "sampler"
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flag = next(a for a in sub.choices["search"]._actions if "--sampler" in a.option_strings)
    assert tuple(flag.choices) == tuple(SAMPLERS)
    assert all(f"{k.name}: {k.summary}" in flag.help for k in SAMPLERS.values()) and DEFAULT_SAMPLER in flag.help
