"""nas.deploy.targets: what to export (an architecture, the top of a study's front, one trial), and the study
side of `nas export` (its default storage)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from nas.deploy import target_from_arch, targets_from_study
from nas.deploy.targets import plain
from nas.errors import NasError
from nas.search.storage import DEFAULT_STORAGE
from helpers_deploy import OTHER, SPACE, TINY, make_study


def test_unknown_study_trial_and_empty_front(tmp_path, capsys):
    storage = make_study(tmp_path / "s.db", [TINY])
    with pytest.raises(NasError, match="no study 'nope'"):
        targets_from_study(storage, "nope", top_k=1)
    with pytest.raises(NasError, match=r"no finished trial 7 in study 's' \(1 finished trials"):
        targets_from_study(storage, "s", trial=7)
    assert targets_from_study(storage, "s", trial=0)[0].arch == TINY
    empty = make_study(tmp_path / "e.db", [TINY], feasible=False)
    rc, _, err = run_cli(capsys, "export", "--storage", empty, "--study", "s", "--out-dir", tmp_path / "o")
    assert rc == 2 and "empty Pareto front" in err and err.count("\n") == 1


def test_study_targets_are_the_front_in_latency_order_with_provenance(tmp_path):
    storage = make_study(tmp_path / "s.db", [TINY, OTHER])
    targets = targets_from_study(storage, "s", top_k=5)
    assert [(t.name, t.arch) for t in targets] == [("s-trial0", TINY), ("s-trial1", OTHER)]
    t = targets[0]
    assert t.space == SPACE and t.devices == ["dev"] and t.latency_dtype == "arch"
    assert t.provenance["source"] == "study" and t.provenance["storage"] == storage and t.provenance["trial"] == 0
    json.dumps(t.provenance)  # metrics are plain Python values
    assert [t.name for t in targets_from_study(storage, "s", top_k=1)] == ["s-trial0"]


def test_errors_name_api_arguments_and_the_cli_translates_them(tmp_path, capsys):
    storage = make_study(tmp_path / "s.db", [TINY])
    with pytest.raises(NasError) as e:
        targets_from_study(storage, "s", top_k=0)
    assert e.value.argument == "top_k" and "--" not in str(e.value)
    with pytest.raises(NasError) as e:
        targets_from_study(storage, "s", trial=7)
    assert e.value.argument == "trial" and "--" not in str(e.value)
    with pytest.raises(NasError) as e:
        targets_from_study(make_study(tmp_path / "e.db", [TINY], feasible=False), "s", top_k=1)
    assert e.value.argument == "study" and "trial=N" in e.value.fix
    with pytest.raises(NasError, match="not an architecture of space 'mobilenet-c10'") as e:
        target_from_arch(SPACE, TINY.replace("c96", "c999"))
    assert e.value.argument == "arch"
    rc, _, err = run_cli(capsys, "export", "--storage", storage, "--study", "s", "--trial", 7, "--out-dir", tmp_path / "o")
    assert rc == 2 and err.startswith("nas: error: --trial: no finished trial 7")
    empty = make_study(tmp_path / "e2.db", [TINY], feasible=False)
    rc, _, err = run_cli(capsys, "export", "--storage", empty, "--study", "s", "--out-dir", tmp_path / "o")
    assert rc == 2 and err.startswith("nas: error: --study: study 's' has an empty") and "with --trial N" in err


def test_arch_target_is_canonical_and_named_by_its_hash():
    a = target_from_arch(SPACE, TINY, ["raspi4"])
    assert a.arch == TINY and a.name.startswith("arch-") and a.devices == ["raspi4"]
    assert a.provenance == {"source": "--arch"}  # the card's provenance field, as before
    assert target_from_arch(SPACE, TINY).name == a.name != target_from_arch(SPACE, OTHER).name


def test_plain_turns_numpy_scalars_into_python_values():
    assert type(plain(np.float32(1.5))) is float and type(plain(np.int64(3))) is int and plain("x") == "x"


def test_cli_study_export_uses_the_default_storage(tmp_path, capsys, monkeypatch):  # bug 9
    monkeypatch.chdir(tmp_path)
    assert DEFAULT_STORAGE == "sqlite:///nas-studies.db"  # relative: the current folder, as search and pareto
    make_study(tmp_path / "nas-studies.db", [TINY])
    rc, out, err = run_cli(capsys, "export", "--study", "s", "--top-k", 1, "--out-dir", "exported", "--epochs", 0, "--data",
                           "digits", "--calib-samples", 4, "--rounds", 1, "--test-samples", 10, "--quiet")
    assert rc == 0, err
    assert list(pd.read_csv(tmp_path / "exported" / "summary.csv")["status"]) == ["ok"]
    card = json.loads((tmp_path / "exported" / "s-trial0-arch" / "card.json").read_text())
    assert card["provenance"]["storage"] == DEFAULT_STORAGE and card["provenance"]["trial_attrs"]
    rc, _, err = run_cli(capsys, "export", "--out-dir", "exported")
    assert rc == 2 and "give --study NAME" in err
    rc, _, err = run_cli(capsys, "export", "--study", "s", "--space", SPACE, "--arch", TINY, "--out-dir", "exported")
    assert rc == 2 and "not both" in err


def test_a_baseline_name_implies_its_space_and_names_the_target():
    t = target_from_arch(None, "mobilenetv2-0.5")
    assert (t.name, t.space) == ("mobilenetv2-0.5", "mobilenetv2-0.5-c10")
    assert t.provenance == {"source": "--arch", "baseline": "mobilenetv2-0.5"}
    assert target_from_arch("mobilenet-c10", "mobilenetv2-1.0").name == "mobilenetv2-1.0"
    with pytest.raises(NasError, match="a space is needed") as exc:
        target_from_arch(None, TINY)
    assert exc.value.argument == "space"


def test_item3_study_export_builds_the_space_the_study_searched(tmp_path, monkeypatch):
    """Item 3: `nas export --study` rebuilt the space by name: a user's YAML that keeps the shipped name
    fbnet-c100 with 10 classes was exported with the shipped 100-class head. The target carries the study's
    stored space."""
    import nas
    from nas.deploy import ExportConfig, export
    from nas.paths import SHIPPED_SPACES_DIR
    from nas.space import registry

    path = tmp_path / "ten.yaml"
    path.write_text((SHIPPED_SPACES_DIR / "fbnet-c100.yaml").read_text().replace("num_classes: 100",
                                                                                 "num_classes: 10", 1))
    space = nas.load_space(str(path))
    storage = f"sqlite:///{tmp_path}/s.db"
    search = nas.search.create_search(space, latency=[nas.latency.load("raspi4")],
                                      scorer=nas.proxies.Scorer(space, ["params"], data="noise"),
                                      storage=storage, study="ten", allow_estimate=True, sampler="random")
    search.optimize(2)
    path.unlink()
    monkeypatch.setattr(registry, "_LOADED_PATHS", {})  # a new process
    target = targets_from_study(storage, "ten", trial=0)[0]
    cfg = ExportConfig(epochs=0, data="digits", calib_samples=4, test_samples=10, rounds=1, warmup=1, repeats=1,
                       progress=False)
    rows = export([target], tmp_path / "out", cfg)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    card = json.loads((tmp_path / "out" / rows[0]["name"] / "card.json").read_text())
    assert card["num_classes"] == 10 and card["space"] == "fbnet-c100"
