"""Which architectures to measure for `nas lut adapt` (nas.latency.transfer.suggest)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from nas.errors import NasError
from nas.latency.load import load as load_latency
from nas.latency.transfer.suggest import suggest
from nas.space import load_space
from helpers_latency import FBNET, FROM, TRANSFER_SPACE

SPACE = TRANSFER_SPACE


@pytest.fixture(scope="module")
def space():
    return load_space(SPACE)


def test_suggest_writes_a_csv_to_fill_in_deterministically(tmp_path, capsys, space):
    paths = [tmp_path / f"{i}.csv" for i in range(3)]
    for p, seed in zip(paths, (0, 0, 1)):
        rc, _, err = run_cli(capsys, "lut", "suggest", "--space", SPACE, "--n", "6", "--seed", seed, *FROM,
                             "--pool", "300", "-o", p)
        assert rc == 0, err
    df = pd.read_csv(paths[0], keep_default_na=False)
    assert list(df.columns) == ["arch", "latency_ms"] and len(df) == 6 and set(df["latency_ms"]) == {""}
    assert len({space.parse(a) for a in df["arch"]}) == 6
    assert paths[0].read_text() == paths[1].read_text() != paths[2].read_text()


def test_suggest_spreads_over_the_features(space):
    """The suggested set covers the source-latency range of its pool better than a random set of its size."""
    pool = list(dict.fromkeys(space.sample_many(400, seed=0)))
    edge = load_latency("edgegpu")

    def spread(archs):
        v = [edge.predict(a, space).latency_ms for a in archs]
        return max(v) - min(v)

    picked = suggest(space, 8, seed=0, sources=FBNET, candidates=pool)
    randoms = [spread(pool[i * 8:(i + 1) * 8]) for i in range(10)]
    assert spread(picked) > np.median(randoms)


def test_bad_n_and_sources_name_api_arguments_and_the_cli_its_flags(space, capsys):
    with pytest.raises(NasError, match="must be at least 3, got 2") as exc:
        suggest(space, 2, sources=FBNET)
    assert exc.value.argument == "n"
    with pytest.raises(NasError, match="unknown device 'raspi5'") as exc:
        suggest(space, 5, sources=["raspi5"])
    assert exc.value.argument == "sources"
    rc, _, err = run_cli(capsys, "lut", "suggest", "--space", SPACE, "--n", 2, "-o", "unused.csv")
    assert rc == 2 and err.startswith("nas: error: --n: must be at least 3")
    rc, _, err = run_cli(capsys, "lut", "suggest", "--space", SPACE, "--n", 5, "--from", "raspi5", "-o", "unused.csv")
    assert rc == 2 and err.startswith("nas: error: --from: unknown device 'raspi5'")
