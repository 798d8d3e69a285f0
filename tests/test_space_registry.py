"""Every shipped space (the contract test over all of them) loads, samples deterministically and has its size; unknown names suggest."""

import pytest

from nas import NasError, list_spaces, load_space

SPACES = list_spaces()


def test_all_expected_spaces_ship():
    assert set(SPACES) >= {"mobilenet-c10", "mobilenet-in1k", "fbnet-c100", "fbnet-in1k", "nas-bench-macro",
                           "ofa-mbv3", "proxylessnas-mobile"}


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_deterministic_under_a_seed(name):
    space = load_space(name)
    a = [space.format(x) for x in space.sample_many(20, seed=7)]
    b = [space.format(x) for x in space.sample_many(20, seed=7)]
    c = [space.format(x) for x in space.sample_many(20, seed=8)]
    assert a == b
    assert a != c or space.count() == 1  # a baseline's own space holds one architecture


def test_space_sizes():
    assert load_space("nas-bench-macro").count() == 3 ** 8
    assert load_space("fbnet-c100").count() == 9 ** 22
    # OFA: 17 resolutions x 5 stages of sum_{d=2..4} 9^d sub-blocks
    assert load_space("ofa-mbv3").count() == 17 * (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5


def test_unknown_space_suggests():
    with pytest.raises(NasError, match="did you mean 'fbnet-c100'"):
        load_space("fbnet-c10")



@pytest.mark.parametrize("name", SPACES)
def test_choices_are_the_answers_that_sample_the_architecture_again(name):
    space = load_space(name)
    options = space.choice_options()
    for arch in space.sample_many(25, seed=3):
        answers = space.choices(arch)
        assert space.sample(lambda n, opts: answers[n]) == arch
        assert all(answers[n] in options[n] for n in answers)  # every answer is an option of a known choice
