"""experiments/end_to_end/end_to_end.py: the pick rule, and a run that is killed mid-way resumes without redoing
work."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.end_to_end import end_to_end as mod


@pytest.fixture
def e2e(monkeypatch, tmp_path):
    monkeypatch.setattr(mod, "WORK", tmp_path / "work")
    monkeypatch.setattr(mod, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(mod, "DATA", "digits")
    monkeypatch.setattr(mod, "RECIPE", mod.Recipe("tiny", epochs=1, n_train=128, qat_epochs=1, qat_n_train=64,
                                                  bn_samples=64, calib_samples=16))
    return mod


def test_the_pick_rule_spaces_log_latency_distinct_on_the_proxy_latency_front_and_no_baseline(e2e):
    lat = [1.0, 1.5, 2.2, 3, 4.5, 7, 8, 16, 17, 100]
    front = pd.DataFrame({"trial": range(10), "arch": [f"a{i}" for i in range(10)], "latency_ms.x": lat,
                          "proxy.p": [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]})
    picks = e2e.pick_front(front, "latency_ms.x", exclude={"a9"})  # a9, the slowest, is a baseline: skipped
    # targets 1, 1.76, 3.11, 5.48, 9.66, 17 ms (log-spaced from 1 to 17): 5.48 is nearer 4.5 than 7 in log
    assert list(picks["trial"]) == [0, 1, 3, 4, 6, 8]
    assert picks["trial"].is_unique and list(picks["position"]) == list(e2e.PICK_POSITIONS)
    front.loc[1, "proxy.p"] = 0.5  # a1 is slower than a0 and scores lower: off the proxy-latency front
    assert list(e2e.pick_front(front, "latency_ms.x", {"a9"}, "proxy.p")["trial"]) == [0, 2, 3, 4, 6, 8]


def test_the_matched_rule_takes_the_best_scoring_front_member_within_each_baselines_predicted_latency(e2e):
    front = pd.DataFrame({"trial": range(6), "arch": [f"a{i}" for i in range(6)],
                          "latency_ms.x": [1.0, 2.0, 2.5, 3.0, 4.0, 5.0], "proxy.p": [1.0, 3, 2, 4, 6, 7]})
    budgets = {"b fp32": 3.5, "b int8": 2.2, "tiny fp32": 0.5, "big int8": 9.0}
    picks = e2e.pick_matched(front, "latency_ms.x", "proxy.p", budgets, exclude={"a5"})
    # a2 scores below the faster a1: off the proxy-latency front; a5 is a baseline; 0.5 ms is below every member
    assert list(picks["budget"]) == ["b fp32", "b int8", "big int8"]
    assert list(picks["trial"]) == [3, 1, 4]
    assert (picks["latency_predicted_ms"] <= picks["budget_ms"]).all()


def test_matched_picks_join_the_front_models_once_and_apart_from_the_quantile_picks(e2e):
    e2e.RESULTS.mkdir(parents=True)
    run = next(r for r in e2e.SEARCH_RUNS if r.matched)
    pd.DataFrame({"position": [0.0], "trial": [9], "arch": ["a9"], "latency_predicted_ms": [1.0]}).to_csv(
        e2e.RESULTS / f"picks{run.suffix}.csv", index=False)
    pd.DataFrame({"budget": ["x fp32", "x int8", "y fp32"], "budget_ms": [1, 2, 3], "trial": [9, 4, 4],
                  "arch": ["a9", "a4", "a4"], "latency_predicted_ms": [1, 2, 2], "proxy": [1, 2, 2]}).to_csv(
        e2e.RESULTS / f"picks{run.suffix}-matched.csv", index=False)
    names = [m.name for m in e2e.front_models(searches=(run.number,))]
    assert names == [f"{run.prefix}-p000-t9", f"{run.prefix}-m-t4"]  # t9 is a quantile pick already; t4 once
    assert e2e.search_of(names[1], "front") == run.number


def _timing(e2e, path, skip=()):
    rows = [{"name": m.name, "deployment": d, "graph": "trained", "latency_measured_ms": 0.5 + i + 0.25 * j}
            for i, m in enumerate(e2e.baseline_models()) for j, d in enumerate(m.deployments)
            if f"{m.name} {d}" not in skip]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_a_run_with_measured_budgets_picks_at_the_baselines_measured_latencies_alone(e2e):
    """Search 5's kind of run: budgets from a timing file, no quantile picks, every pick named ``-m-``."""
    run = next(r for r in e2e.SEARCH_RUNS if r.budgets_from)
    assert not run.quantile and run.matched and run.device
    _timing(e2e, e2e.RESULTS / run.budgets_from)
    pd.DataFrame({"trial": [3, 5, 8], "arch": ["a3", "a5", "a8"], "latency_ms.x": [0.6, 1.4, 9.0],
                  "proxy.p": [1.0, 2.0, 3.0]}).to_csv(e2e.RESULTS / f"front{run.suffix}.csv", index=False)
    picks = e2e.run_pick_matched("no table: the budgets are measured", run)
    budgets = e2e.measured_budgets(e2e.RESULTS / run.budgets_from, e2e.baseline_models())
    assert dict(zip(picks["budget"], picks["budget_ms"])).items() <= budgets.items()
    assert set(picks["trial"]) == {3, 5}  # a8 (9 ms) is slower than every baseline
    assert not (e2e.RESULTS / f"picks{run.suffix}.csv").exists()
    assert [m.name for m in e2e.front_models(searches=(run.number,))] == [f"{run.prefix}-m-t3", f"{run.prefix}-m-t5"]


def test_measured_budgets_name_the_file_and_the_baseline_they_lack(e2e, tmp_path):
    with pytest.raises(FileNotFoundError, match="timing.csv.*--phase time"):
        e2e.measured_budgets(tmp_path / "timing.csv", e2e.baseline_models())
    _timing(e2e, tmp_path / "timing.csv", skip={"mobilenetv3-large int8"})
    with pytest.raises(ValueError, match=r"timing.csv: no measured latency for mobilenetv3-large int8"):
        e2e.measured_budgets(tmp_path / "timing.csv", e2e.baseline_models())


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_finished_work(e2e, train_space, monkeypatch):
    model = e2e.Model("tiny", "front", train_space.name, train_space.format(train_space.sample_many(1, seed=0)[0]))
    real, calls = e2e.deploy_one, []

    def killed(*a, **k):
        calls.append(a[2:4])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(e2e, "deploy_one", killed)
    with pytest.raises(KeyboardInterrupt):
        e2e.train_all([model])
    float_pt = e2e.folder_of(model, 0) / "float.pt"
    assert float_pt.is_file()
    first_mtime = float_pt.stat().st_mtime_ns
    monkeypatch.setattr(e2e, "deploy_one", real)
    rows = e2e.train_all([model])
    assert float_pt.stat().st_mtime_ns == first_mtime  # the float training was not redone
    units = {(r["seed"], r["deployment"], r["quantization"]) for r in rows}
    assert ("fp32", "none") in model.units and ("arch", "qat") in model.units and len(model.units) == 5
    assert units == {(s, d, q) for s in e2e.SEEDS for d, q in model.units}
    r = json.loads((e2e.kept_of(model, 0) / "int8-qat" / "result.json").read_text())
    correct = np.load(e2e.kept_of(model, 0) / "int8-qat" / "correct.npy")
    assert r["acc_deployed"] == pytest.approx(correct.mean()) and r["n_test"] == len(correct) > 0
    again = e2e.train_all([model])  # everything is done: nothing runs
    assert sorted(map(str, again)) == sorted(map(str, rows))


def test_a_unit_added_after_the_weights_are_gone_retrains_every_unit_of_that_seed(e2e, train_space):
    """A deployment added in a later session (its float weights git-ignored, so gone): the float net is trained
    again and every unit of that (model, seed) comes from it, none from the old training; a seed with its weights
    on disk only gets the missing unit."""
    model = e2e.Model("tiny", "front", train_space.name, train_space.format(train_space.sample_many(1, seed=0)[0]))
    e2e.train_all([model], seeds=(0, 1))
    for seed in (0, 1):
        old = e2e.kept_of(model, seed) / "arch-ptq" / "result.json"
        old.write_text(json.dumps({**json.loads(old.read_text()), "from_the_old_training": True}))
        shutil.rmtree(e2e.kept_of(model, seed) / "fp32-none")
    (e2e.folder_of(model, 0) / "float.pt").unlink()
    kept_float = e2e.folder_of(model, 1) / "float.pt"
    mtime = kept_float.stat().st_mtime_ns
    rows = e2e.train_all([model], seeds=(0, 1))
    assert {(r["seed"], r["deployment"], r["quantization"]) for r in rows} == {
        (s, d, q) for s in (0, 1) for d, q in model.units}
    retrained = [r for r in rows if r["seed"] == 0]
    assert not any(r.get("from_the_old_training") for r in retrained)
    assert (e2e.folder_of(model, 0) / "float.pt").is_file() and kept_float.stat().st_mtime_ns == mtime
    assert json.loads((e2e.kept_of(model, 1) / "arch-ptq" / "result.json").read_text())["from_the_old_training"]


@pytest.mark.slow
def test_time_and_report_on_one_finished_seed(e2e, train_space, monkeypatch):
    """The first seed alone makes a whole report; each trained file is timed beside its rebuilt graph, and a
    machine without the trained files times the rebuilt graphs."""
    a, b = train_space.sample_many(2, seed=1)
    front = e2e.Model("tiny-front", "front", train_space.name, train_space.format(a))
    base = e2e.Model("tiny-base", "baseline", train_space.name, train_space.format(b))
    monkeypatch.setattr(e2e, "SEEDS", (0, 1))
    e2e.train_all([front, base], seeds=(0,))
    timing = e2e.run_time([front, base], "x86-2vcpu", rounds=1)
    assert len(timing) == 5 and set(timing["graph"]) == {"trained"}  # front arch, int8, fp32; baseline fp32, int8
    assert (timing["latency_measured_ms"] > 0).all() and (timing["latency_rebuilt_ms"] > 0).all()
    assert timing["latency_predicted_ms"].isna().all() and timing["prediction_note"].str.len().gt(0).all()
    per_round = pd.read_csv(e2e.recipe_dir() / "timing_rounds.csv")  # one row per measured graph and round
    assert len(per_round) == 5 and (per_round["round"] == 0).all() and per_round["latency_ms"].gt(0).all()
    proxy = e2e.run_proxy([front, base])  # the diagnosis: proxy scores beside trained accuracy
    assert list(proxy["name"]) == ["tiny-front", "tiny-base"] and (proxy["seeds"] == 1).all()
    assert proxy[[f"qnaswot.{d}" for d in e2e.PROXY_DATA]].notna().all().all()
    e2e.run_report({2: {"study": "s", "device": "x86-2vcpu", "seconds": 60.0}})
    assert "Proxy scores beside trained accuracy" in (e2e.recipe_dir() / "end_to_end.md").read_text()
    assert "(one seed so far)" in (e2e.recipe_dir() / "end_to_end.md").read_text()
    summary = json.loads((e2e.recipe_dir() / "end_to_end.json").read_text())
    assert [h.split(":")[0] for h in summary["headline"]] == ["PTQ (search 2)", "QAT (search 2)"]
    assert summary["seeds_finished"] == {"tiny-base": 1, "tiny-front": 1}
    dom = pd.read_csv(e2e.recipe_dir() / "dominance.csv")
    assert len(dom) == 4 and set(dom["baseline"]) == {"tiny-base"}  # fp32 and int8, for PTQ and for QAT
    from nas.latency.measure.host import fingerprint

    rows = pd.read_csv(e2e.recipe_dir() / "end_to_end.csv")  # each unit names the CPU that trained it
    assert set(rows["train_cpu"]) == {fingerprint(1)["cpu"]} and (rows["train_minutes"] > 0).all()
    assert set(dom["search"]) == {2}  # a front name with no run's prefix is the first run's
    rows = pd.read_csv(e2e.recipe_dir() / "end_to_end.csv")
    assert len(rows) == 8 and rows["latency_measured_ms"].gt(0).all()  # front 5 units, baseline 3
    for p in e2e.WORK.rglob("*.onnx"):
        p.unlink()
    rebuilt = e2e.run_time([front, base], "x86-2vcpu", rounds=1)
    assert set(rebuilt["graph"]) == {"rebuilt"} and rebuilt["latency_measured_ms"].gt(0).all()


def test_seed_noise_pools_the_spread_of_seeds_per_kind_and_says_what_it_resolves(e2e):
    rows = [{"kind": k, "name": n, "deployment": "int8", "quantization": "ptq", "seed": s, "acc_deployed": a}
            for k, n, accs in [("baseline", "b", (0.880, 0.882)), ("front", "f1", (0.85, 0.87)),
                               ("front", "f2", (0.86, 0.86)), ("front", "lone", (0.9,))]
            for s, a in enumerate(accs)]
    noise = e2e.seed_noise(pd.DataFrame(rows)).set_index("kind")
    assert noise.loc["front", "units"] == 2  # a unit with one seed has no spread to pool
    assert noise.loc["front", "pooled_sd_points"] == pytest.approx(100 * np.sqrt((0.0002 + 0) / 2))
    assert noise.loc["front", "max_spread_points"] == pytest.approx(2.0)
    assert noise.loc["baseline", "pooled_sd_points"] == pytest.approx(100 * np.sqrt(0.000002))
    both = 1.0 + 0.02  # variances in point^2: front (0.0002 + 0) / 2 -> 1, baseline 0.000002 -> 0.02
    assert noise.loc["front", "vs_baseline_halfwidth95_points"] == pytest.approx(1.96 * np.sqrt(both / 2))
    assert noise.loc["front", "seeds_for_margin"] == np.ceil(1.96 ** 2 * both / 0.2 ** 2)


def test_each_search_runs_picks_are_named_and_judged_apart(e2e):
    """Search 3's picks carry its prefix and number; a baseline belongs to no search."""
    e2e.RESULTS.mkdir(parents=True)
    for run, trial in [(e2e.SEARCH_RUNS[0], 7), (e2e.SEARCH_RUNS[1], 9)]:
        pd.DataFrame({"position": [0.0], "trial": [trial], "arch": [f"a{trial}"],
                      "latency_predicted_ms": [1.0]}).to_csv(e2e.RESULTS / f"picks{run.suffix}.csv", index=False)
    models = e2e.front_models()
    assert [(m.name, m.search) for m in models] == [("front-p000-t7", 2), ("front-s3-p000-t9", 3)]
    assert [e2e.search_of(m.name, "front") for m in models] == [2, 3]
    assert e2e.search_of("mobilenetv2-1.0", "baseline") == 0
    assert [m.name for m in e2e.front_models(searches=(3,))] == ["front-s3-p000-t9"]  # --searches 3
    assert [m.name for m in e2e.models_named(["front-s3-p000-t9", "front-p000-t7"])] == [
        "front-s3-p000-t9", "front-p000-t7"]  # --models: in the order given
    with pytest.raises(ValueError, match="'nope'.*known: .*mobilenetv3-large"):
        e2e.models_named(["nope"])


def test_each_recipe_keeps_its_own_units_weights_and_models(e2e, monkeypatch):
    """A unit finished under one recipe is not another recipe's: a new recipe retrains every model."""
    model = e2e.Model("m", "front", "mobilenet-c10", "a")
    monkeypatch.setattr(e2e, "all_models", lambda only=None, searches=None: [model])
    unit = e2e.kept_of(model, 0) / "int8-ptq" / "result.json"
    unit.parent.mkdir(parents=True)
    unit.write_text("{}")
    assert e2e.trained_models() == [model]
    first, tiny = (e2e.kept_of(model, 0), e2e.folder_of(model, 0), e2e.recipe_dir()), e2e.RECIPE
    monkeypatch.setattr(e2e, "RECIPE", e2e.RECIPES["full1"])
    assert e2e.trained_models() == [] and e2e.collect_units().empty
    with pytest.raises(FileNotFoundError, match="no finished units under .*full1.*--recipe full1 --phase train"):
        e2e.collect()
    assert all(a != b for a, b in zip(first, (e2e.kept_of(model, 0), e2e.folder_of(model, 0), e2e.recipe_dir())))
    assert e2e.kept_of(model, 0, tiny) == first[0]  # recipe_noise reads another recipe's units this way


def test_a_recipe_that_changes_only_qat_shares_the_float_training_of_its_source(e2e, train_space, monkeypatch):
    """``float_from``: the float network is trained once, under the source recipe's folders, and read back by the
    recipe that redoes only the deployments; a source with other float settings is refused."""
    from dataclasses import replace

    import torch

    tiny = e2e.RECIPE
    qat = replace(tiny, name="tiny-qat", qat_lr=0.001, float_from="tiny")
    monkeypatch.setattr(e2e, "RECIPES", {"tiny": tiny, "tiny-qat": qat,
                                         "longer-qat": replace(qat, name="longer-qat", epochs=2)})
    model = e2e.Model("m", "front", train_space.name, train_space.format(train_space.sample_many(1, seed=0)[0]))
    arch = train_space.parse(model.arch)
    train_data = e2e.load_data(train_space, arch, 0)[0]
    first, _ = e2e.shared_float(model, 0, train_space, arch, train_data)  # under tiny itself: trains
    weights = e2e.folder_of(model, 0) / "float.pt"
    mtime = weights.stat().st_mtime_ns
    monkeypatch.setattr(e2e, "RECIPE", qat)
    second, record = e2e.shared_float(model, 0, train_space, arch, train_data)
    assert weights.stat().st_mtime_ns == mtime and not (e2e.folder_of(model, 0) / "float.pt").exists()
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert json.loads((e2e.kept_of(model, 0) / "float.json").read_text()) == record
    assert e2e.kept_of(model, 0) != e2e.kept_of(model, 0, tiny)
    monkeypatch.setattr(e2e, "RECIPE", e2e.RECIPES["longer-qat"])
    with pytest.raises(ValueError, match="'longer-qat' shares 'tiny'.*epochs"):
        e2e.shared_float(model, 0, train_space, arch, train_data)


def test_every_shipped_recipe_that_shares_float_training_matches_its_source():
    for r in mod.RECIPES.values():
        if r.float_from is not None:
            src = mod.RECIPES[r.float_from]
            assert src.float_from is None and (src.epochs, src.n_train, src.bn_samples) == (
                r.epochs, r.n_train, r.bn_samples)


def test_the_shipped_matched_picks_follow_the_rule_from_the_shipped_front():
    """Re-deriving search 3's matched picks from its committed front and the budgets in the file gives the file."""
    for run in (r for r in mod.SEARCH_RUNS if r.matched):
        path = mod.RESULTS / f"picks{run.suffix}-matched.csv"
        if not path.is_file():
            continue
        shipped, front = pd.read_csv(path), pd.read_csv(mod.RESULTS / f"front{run.suffix}.csv")
        exclude = {m.arch for m in mod.baseline_models()}
        again = mod.pick_matched(front, *mod.front_columns(front), dict(zip(shipped["budget"], shipped["budget_ms"])),
                                 exclude)
        assert list(again["trial"]) == list(shipped["trial"]) and list(again["arch"]) == list(shipped["arch"])


def test_a_network_two_searches_picked_is_trained_once(e2e, monkeypatch):
    """The second name of one network gets the first's finished units, renamed, and trains nothing."""
    first, second = (e2e.Model(n, "front", "mobilenet-c10", "same-arch") for n in ("front-p000-t0", "front-s3-p000-t0"))
    units = first.units
    src = e2e.kept_of(first, 0)
    for d, q in units:
        (src / f"{d}-{q}").mkdir(parents=True)
        np.save(src / f"{d}-{q}" / "correct.npy", np.ones(4, bool))
        (src / f"{d}-{q}" / "result.json").write_text(json.dumps({"name": first.name, "seed": 0, "deployment": d}))
    (src / "float.json").write_text(json.dumps({"seconds": 60.0}))
    e2e.copy_units(first, second, 0, units)
    for d, q in units:
        r = json.loads((e2e.kept_of(second, 0) / f"{d}-{q}" / "result.json").read_text())
        assert r["name"] == second.name and r["copied_from"] == first.name and r["deployment"] == d
        assert np.load(e2e.kept_of(second, 0) / f"{d}-{q}" / "correct.npy").all()
    assert (e2e.kept_of(second, 0) / "float.json").is_file() and not e2e.kept_of(second, 1).exists()


def test_a_space_probe_is_a_canonical_int8_member_judged_apart_from_the_picks(e2e):
    """A probe (hand-made member of the searched space) is reported with the baselines it would dominate, and is
    never a front member in the dominance check (a hand-made network is not what the search handed out)."""
    from nas.space import load_space

    probes = {m.name: m for m in e2e.all_models("probes")}
    assert list(probes) == list(e2e.PROBES) and {m.kind for m in probes.values()} == {"probe"}
    for m in probes.values():
        space = load_space(m.space)
        assert space.format(space.parse(m.arch)) == m.arch
    member = load_space(e2e.SPACE).parse(probes["probe-v3like"].arch)  # a member of the searched space, at w8a8
    assert {(b.wbits, b.abits) for st in member.stages for b in st.blocks} == {(8, 8)}
    # the head ablation: search 3's p040 in a space that differs from the searched one in its head alone
    head = probes["probe-p040-v3s-head"]
    picks = pd.read_csv(Path(mod.__file__).parent / "results" / "picks-s3.csv")  # the shipped file
    assert head.arch == picks.loc[picks["position"] == 0.4, "arch"].iloc[0] and head.space == "mobilenet-c10-v3s-head"
    searched, ablated = load_space(e2e.SPACE), load_space(head.space)
    assert (ablated.stem, ablated.stages, ablated.resolutions) == (searched.stem, searched.stages, searched.resolutions)
    assert [(l.op, l.width, l.act) for l in ablated.head] == [("conv", 576, "hswish"), ("pool", 0, "none"),
                                                              ("linear", 1024, "hswish"), ("linear", 10, "none")]
    assert set(head.deployments) == {"int8", "fp32"}
    with pytest.raises(ValueError, match="'probe-gone' is not in PROBES"):
        e2e.Model("probe-gone", "probe", e2e.SPACE, "").deployments

    def unit(name, kind, dep, quant, acc, ms, seed=0):
        return {"name": name, "kind": kind, "search": e2e.search_of(name, kind), "deployment": dep,
                "quantization": quant, "seed": seed, "acc_deployed": acc, "latency_measured_ms": ms, "size_mb": 1.0}

    rows = [unit("base", "baseline", "fp32", "none", 0.8805, 2.0), unit("front-p000-t0", "front", "int8", "ptq", 0.80, 0.5),
            unit("front-p000-t0", "front", "int8", "qat", 0.80, 0.5)]
    for q in e2e.METHODS:
        rows += [unit("base", "baseline", "int8", q, 0.880, 1.9),
                 unit("probe-x", "probe", "int8", q, 0.880, 1.5), unit("probe-x", "probe", "int8", q, 0.878, 1.5, 1)]
    df = pd.DataFrame(rows)
    for r in rows:  # per-image correctness, for the bootstrap against the baseline the probe must match
        folder = e2e.kept_of(e2e.Model(r["name"], "", "", ""), r["seed"]) / f"{r['deployment']}-{r['quantization']}"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "correct.npy", np.arange(1000) < 1000 * r["acc_deployed"])
    verdicts = e2e.probe_verdicts(df)
    assert list(verdicts["method"]) == ["ptq", "qat"] and (verdicts["dominated_of"] == "2 of 2").all()
    assert verdicts["acc"].tolist() == pytest.approx([87.9, 87.9]) and (verdicts["seeds"] == 2).all()
    assert (verdicts["versus"] == "base fp32").all()  # the most accurate baseline at no less latency
    assert verdicts["acc_diff_points"].tolist() == pytest.approx([-0.15, -0.15])
    lo, hi = (float(x) for x in verdicts["acc_diff_ci95"][0].strip("[]").split(","))
    assert lo < -0.15 < hi
    dom = e2e.dominance(df)
    assert len(dom) == 4 and not dom["dominated"].any()  # the probe would win; the front member does not
    # why not: nothing as accurate (0.80 against 0.88), and the faster member lacks 8 points
    assert (dom["slower_at_equal_acc"] == "none").all()
    assert set(dom["short_at_equal_ms"]) == {"front-p000-t0 int8: 80.00 %, -8.05 point",
                                             "front-p000-t0 int8: 80.00 %, -8.00 point"}


def test_an_undominated_baseline_says_how_near_the_front_came(e2e):
    front = pd.DataFrame({"name": ["a", "b", "c"], "deployment": ["int8", "fp32", "int8"],
                          "acc": [0.905, 0.919, 0.921], "latency": [0.8, 2.40, 3.0]})
    base = pd.Series({"acc": 0.920, "latency": 2.39})
    misses = e2e.nearest_misses(front, base)
    assert misses == {"slower_at_equal_acc": "b fp32: 2.40 ms, 1.00x the baseline's",
                      "short_at_equal_ms": "a int8: 90.50 %, -1.50 point"}
    assert e2e.nearest_misses(front[front["name"] == "c"], pd.Series({"acc": 0.95, "latency": 1.0})) == {
        "slower_at_equal_acc": "none", "short_at_equal_ms": "none"}


def test_a_speed_up_near_1_gets_a_paired_interval_over_the_timing_rounds(e2e):
    """The per-round ratio keeps rounds paired: a front graph that runs 2 % slower in every round, while the
    machine's speed swings 20 % between rounds, gets a tight interval above 1; one that swings against the
    baseline straddles 1."""
    base = np.array([2.0, 2.4, 2.0, 2.4, 2.2, 2.0, 2.4, 2.2])
    rounds = {("v3", "fp32"): base, ("steady", "fp32"): base * 1.02,
              ("tie", "fp32"): base * np.array([0.95, 1.05, 0.97, 1.03, 1.0, 0.96, 1.04, 1.0])}
    assert e2e.ratio_interval(rounds, ("steady", "fp32"), ("v3", "fp32")) == "[1.02, 1.02]"
    lo, hi = (float(x) for x in e2e.ratio_interval(rounds, ("tie", "fp32"), ("v3", "fp32")).strip("[]").split(","))
    assert lo < 1.0 < hi
    assert e2e.ratio_interval(rounds, ("gone", "fp32"), ("v3", "fp32")) == "n/a"
    assert e2e.ratio_interval({k: v[:1] for k, v in rounds.items()}, ("tie", "fp32"), ("v3", "fp32")) == "n/a"
    front = pd.DataFrame({"name": ["steady"], "deployment": ["fp32"], "acc": [0.92], "latency": [2.244]})
    miss = e2e.nearest_misses(front, pd.Series({"name": "v3", "deployment": "fp32", "acc": 0.92, "latency": 2.2}),
                              rounds)
    assert miss["slower_at_equal_acc"] == ("steady fp32: 2.24 ms, 1.02x the baseline's "
                                           "(95 % [1.02, 1.02] over timing rounds)")


def test_front_coverage_measures_the_proxy_latency_front_as_trials_grow():
    from experiments.end_to_end import front_coverage as fc

    # two points: (proxy 3 at 1 ms), (proxy 5 at 2 ms); box proxy > 1, latency < 4: 2 x 1 + 4 x 2 = 10
    assert fc.hypervolume_2d(np.array([3.0, 5.0]), np.array([1.0, 2.0]), 1.0, 4.0) == pytest.approx(10.0)
    assert fc.hypervolume_2d(np.array([0.5]), np.array([1.0]), 1.0, 4.0) == 0.0  # outside the box
    df = pd.DataFrame({"trial": range(6), fc.PROXY: [1.0, 3, 2, 5, 4, 6], fc.LATENCY: [1.0, 2, 3, 4, 1.5, 3.5],
                       "feasible": True, "duplicate": [False] * 5 + [True]})
    table = fc.coverage(df, [3, 6], probe=(4.5, 3.8))
    assert list(table["front_size"]) == [2, 3]  # trials 0, 1; then 0, 4 (which beats 1), 3 (5 is a duplicate)
    assert list(table["probe_dominated"]) == [False, False]
    assert table["hypervolume"].is_monotonic_increasing and table["hypervolume"][1] > table["hypervolume"][0]


def test_a_continuing_search_copies_the_run_it_continues_once(e2e, tmp_path):
    """Search 4 continues search 3's study: a copy under its own name (search 3's study is left as it was), made
    once, so a resumed search 4 keeps its own later trials; the search's cost is its trials' summed time."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path}/s.db"
    source = optuna.create_study(study_name="s3", storage=url)
    source.set_user_attr("config", {"proxy": "qnaswot"})
    source.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    e2e.copy_study(url, "s4", "s3")
    copy = optuna.load_study(study_name="s4", storage=url)
    assert len(copy.trials) == 3 and copy.user_attrs["config"] == {"proxy": "qnaswot"}
    copy.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    e2e.copy_study(url, "s4", "s3")  # exists: untouched
    assert len(optuna.load_study(study_name="s4", storage=url).trials) == 5 and len(source.trials) == 3
    assert 0 <= e2e.trial_seconds(url, "s4") < 60
    run = e2e.run_by_number(4)
    assert run.continues == 3 and run.trials > e2e.run_by_number(3).trials and run.prefix == "front-s4"


def test_recipe_noise_reuses_end_to_end_seeds_trains_the_rest_once_and_pools_the_spread(e2e, train_space, monkeypatch,
                                                                                      tmp_path):
    from dataclasses import replace

    from experiments.end_to_end import recipe_noise as rn

    model = e2e.Model("tiny", "front", train_space.name, train_space.format(train_space.sample_many(1, seed=0)[0]))
    e2e.train_all([model], seeds=(0,))  # end_to_end finished seed 0 with its recipe
    monkeypatch.setattr(rn, "RECIPES", {"tiny": e2e.RECIPE, "full": replace(e2e.RECIPE, name="full", n_train=None)})
    monkeypatch.setattr(rn, "RESULTS", tmp_path / "rn")
    monkeypatch.setattr(rn, "WORK", tmp_path / "rn-work")
    rn.run_train([model], seeds=(0, 1), recipes=("tiny", "full"))
    unit = {(r, s): json.loads(rn.unit_path(r, "tiny", s).read_text()) for r in ("tiny", "full") for s in (0, 1)}
    reused = json.loads(next((e2e.kept_of(model, 0)).glob("*/result.json")).read_text())
    assert unit[("tiny", 0)]["source"] == "end_to_end units" and unit[("tiny", 0)]["acc_fp32"] == reused["acc_fp32"]
    assert {u["source"] for k, u in unit.items() if k != ("tiny", 0)} == {"trained here"}
    assert unit[("full", 1)]["images"] > unit[("tiny", 1)]["images"] == e2e.RECIPE.epochs * e2e.RECIPE.n_train

    def no_training(*a, **k):
        raise AssertionError("a finished unit was trained again")

    monkeypatch.setattr(e2e, "float_trained", no_training)
    rn.run_train([model], seeds=(0, 1), recipes=("tiny", "full"))
    rn.run_report(tmp_path / "out")
    per, pooled = rn.summarize(pd.read_csv(tmp_path / "out" / "recipe_noise.csv"))
    assert list(pooled["recipe"]) == ["tiny", "full"] and (pooled["dof"] == 1).all()
    for recipe in ("tiny", "full"):
        accs = [unit[(recipe, s)]["acc_fp32"] for s in (0, 1)]
        assert pooled.set_index("recipe").loc[recipe, "pooled_sd_points"] == pytest.approx(100 * np.std(accs, ddof=1))


def test_a_report_names_the_deployments_a_model_has_no_unit_for(e2e):
    """A front member trained before fp32 joined its kind's deployments is listed, not silently short."""
    rows = [{"name": n, "kind": k, "deployment": d} for n, k, ds in [
        ("old-front", "front", ("arch", "int8")), ("new-front", "front", ("arch", "int8", "fp32")),
        ("base", "baseline", ("fp32", "int8")), ("half-base", "baseline", ("int8",))] for d in ds]
    assert e2e.missing_deployments(pd.DataFrame(rows)) == {"half-base": ["fp32"], "old-front": ["fp32"]}
