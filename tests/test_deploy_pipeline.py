"""nas.deploy.pipeline: nas export on tiny real data (digits, E=1, a small mobilenet-c10 member): files, cards,
errors; the training cache of one export() call; training and export at the architecture's own resolution."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

import nas.train.loop
from conftest import run_cli
from nas.deploy import Target, export, targets_from_study
from nas.deploy.pipeline import accuracy_indices, check_config, training_key
from nas.errors import NasError
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.layers import plan
from nas.nn.onnx import ort_session, run_onnx
from nas.space import load_space
from helpers_deploy import (CARD_KEYS, FAST, MULTIRES_SPACE, OTHER, SPACE, TINY, TINY_FAST, WTYPE, make_study,
                                space_file)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("lut")
    pd.DataFrame({"arch": [TINY]}).to_csv(d / "a.csv", index=False)
    # TINY's int8 classifier runs in ~2 us, near the per-call overhead the profiler subtracts: on a loaded host a row
    # can come out non-positive twice and be dropped (not written). A rerun measures only what is missing.
    for _ in range(5):
        result = profile_space(SPACE, "tiny", dtypes=["arch", "fp32"], archs=str(d / "a.csv"),
                               config=ProfileConfig(threads=1, warmup=1, repeats=3, rounds=1), out_dir=d,
                               progress=False)
        if not result.dropped:
            return result
    pytest.fail(f"the tiny table kept dropping rows: {[s.key for s in result.dropped]}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, table):
    d = tmp_path_factory.mktemp("export")
    storage = make_study(d / "s.db", [TINY, OTHER, "not-an-arch"])
    targets = targets_from_study(storage, "s", top_k=3)
    for t in targets:
        t.devices = [str(table)]
    rows = export(targets, d / "out", FAST)
    return d / "out", rows, targets


@pytest.fixture(scope="module")
def tiny_space(tmp_path_factory) -> str:
    return space_file(tmp_path_factory)


@pytest.fixture
def train_calls(monkeypatch):
    """Every call of nas.train.loop.train during the test: the resolution of the images it trained on."""
    calls, real = [], nas.train.loop.train

    def spy(model, **kw):
        calls.append(kw["data"].resolution)
        return real(model, **kw)

    monkeypatch.setattr(nas.train.loop, "train", spy)
    return calls


def _bytes(path) -> bytes:
    return path.read_bytes()


def _input_dims(path) -> list[int]:
    return [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]


@pytest.mark.slow
def test_study_export_writes_files_cards_and_summary(exported):
    out, rows, targets = exported
    assert [t.name for t in targets] == ["s-trial0", "s-trial1", "s-trial2"]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["status"]) == ["ok", "ok", "error"]  # the broken trial does not lose the others
    assert "not-an-arch" in summary["error"][2] and not (out / "s-trial2-arch" / "card.json").exists()
    card = json.loads((out / "s-trial0-arch" / "card.json").read_text())
    assert CARD_KEYS <= set(card)
    space = load_space(SPACE)
    specs = plan(space.parse(TINY), space)
    assert card["arch"] == TINY and card["params"] == sum(s.params() for s in specs)
    assert card["macs"] == sum(s.macs() for s in specs) == int(summary["macs"][0])
    assert [(l["wbits"], l["abits"]) for l in card["layers"]] == [(s.wbits, s.abits) for s in specs]
    assert card["bit_widths"] == {"int8": 9, "w4a8": 1, "w8a32": 1, "w4a32": 1, "w32a8": 1, "fp32": 1}
    for name in ("model.onnx", "model.quant.onnx"):
        assert card["files"][name] == (out / "s-trial0-arch" / name).stat().st_size
    assert card["files"]["size_ratio"] < 0.5
    assert card["training"]["epochs"] == 1 and card["training"]["n_train"] == 128
    assert card["onnx_check"]["max_abs_diff"] <= card["onnx_check"]["tolerance"]
    acc = card["accuracy"]
    assert acc["n"] == 360 and 0 <= acc["quantized"] <= 1 and acc["fp32"] == pytest.approx(summary["fp32_acc"][0])
    assert acc["drop_points"] == pytest.approx(100 * (acc["fp32"] - acc["quantized"]))
    lat = card["latency"]
    assert lat["measured_ms"]["fp32"] > 0 and lat["measured_ms"]["quantized"] > 0
    assert lat["conditions"]["threads"] == 1 and lat["conditions"]["batch"] == 1
    pred = lat["predicted_ms"][str(exported[2][0].devices[0])]
    assert pred["quantized_ms"] > 0 and pred["fp32_ms"] > 0, pred  # the profiled table covers TINY at its bits
    prov = card["provenance"]
    assert prov["study"] == "s" and prov["trial"] == 0 and prov["trial_attrs"]["provenance"]["space"] == SPACE
    # OTHER's int4 layer is not in the table: the prediction is missing, with the reason, the export is fine
    pred1 = json.loads((out / "s-trial1-arch" / "card.json").read_text())["latency"]["predicted_ms"]
    assert next(iter(pred1.values()))["quantized_ms"] is None and "no entry" in next(iter(pred1.values()))["quantized_error"]


@pytest.mark.slow
def test_quantized_file_runs_and_stores_integers_per_layer(exported):
    out = exported[0]
    space = load_space(SPACE)
    specs = plan(space.parse(TINY), space)
    m = onnx.load(str(out / "s-trial0-arch" / "model.quant.onnx"))
    inits = {i.name: i.data_type for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    seen = set()
    for n in m.graph.node:
        if n.op_type in ("Conv", "Gemm"):
            i = int(re.search(r"layers\.(\d+)", n.name).group(1))
            w = n.input[1]
            w = producer[w].input[0] if w in producer else w
            assert inits[w] == WTYPE[specs[i].wbits], specs[i].key
            seen.add(specs[i].wbits)
    assert seen == {4, 8, 32}
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    for name in ("model.onnx", "model.quant.onnx"):
        assert run_onnx(ort_session(out / "s-trial0-arch" / name), x).shape == (1, 10)


def test_cli_arch_export_and_int8_deployment(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "-o", tmp_path, "--epochs", 1,
                           "--data", "digits", "--n-train", 64, "--calib-samples", 8, "--rounds", 1, "--dtype",
                           "int8", "--test-samples", 50, "--quiet")
    assert rc == 0, err
    assert "-o is deprecated, use --out-dir" in err  # the old spelling still works, with one note
    card = json.loads(next(tmp_path.glob("arch-*/card.json")).read_text())
    assert card["deployment"] == "int8" and set(card["bit_widths"]) == {"int8"}
    assert card["accuracy"]["n"] == 50 and card["provenance"]["source"] == "--arch"
    assert "summary.csv" in out


def test_arch_not_in_space_and_missing_dataset(tmp_path, capsys, monkeypatch):
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY.replace("c96", "c999"), "--out-dir", tmp_path)
    assert rc == 2 and "not an architecture of space 'mobilenet-c10'" in err and err.count("\n") == 1
    monkeypatch.setenv("NAS_FASHION_MNIST_DIR", str(tmp_path / "none"))
    import nas.data.datasets

    nas.data.datasets._fashion.cache_clear()
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--out-dir", tmp_path / "o", "--data",
                         "fashion-mnist")
    nas.data.datasets._fashion.cache_clear()
    assert rc == 2 and "Fashion-MNIST is not installed" in err and "dataset-fashion-mnist" in err
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_one_failed_model_makes_the_cli_fail_after_writing_the_others(tmp_path, capsys):
    storage = make_study(tmp_path / "s.db", [TINY, "bad"])
    rc, out, err = run_cli(capsys, "export", "--storage", storage, "--study", "s", "--top-k", 2, "--out-dir", tmp_path / "o",
                           "--epochs", 0, "--data", "digits", "--calib-samples", 4, "--rounds", 1, "--test-samples",
                           20, "--quiet")
    assert rc == 2 and "1 of 2 model(s) failed: s-trial1-arch" in err
    assert (tmp_path / "o" / "s-trial0-arch" / "model.quant.onnx").is_file() and "s-trial1-arch: FAILED" in out


def test_bad_settings_name_the_api_argument_and_the_cli_flag(tmp_path, capsys):
    for cfg, argument in ((replace(TINY_FAST, epochs=-1), "epochs"), (replace(TINY_FAST, calib_samples=0),
                                                                       "calib_samples"),
                          (replace(TINY_FAST, data="noise"), "data")):
        with pytest.raises(NasError) as e:
            check_config(cfg)
        assert e.value.argument == argument and "--" not in str(e.value)
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--out-dir", tmp_path, "--epochs", -1)
    assert rc == 2 and "--epochs: must be 0 or more, got -1" in err
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--out-dir", tmp_path, "--calib-samples", 0)
    assert rc == 2 and "--calib-samples: must be at least 1, got 0" in err
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--out-dir", tmp_path, "--data", "noise")
    assert rc == 2 and "--data: noise has no meaningful accuracy" in err
    assert not (tmp_path / "summary.csv").exists()


def test_accuracy_indices_are_a_sorted_seeded_subset():
    idx = accuracy_indices(360, 50, seed=0)
    assert len(idx) == len(set(idx)) == 50 and list(idx) == sorted(idx) and idx.max() < 360
    assert list(accuracy_indices(360, 50, seed=0)) == list(idx) and list(accuracy_indices(20, None, 0)) == list(range(20))
    assert len(accuracy_indices(20, 500, 0)) == 20


def test_same_arch_and_recipe_trains_once_per_export_call(tiny_space, tmp_path, train_calls):
    twins = [Target(name="a", space=tiny_space, arch="ir_e2"), Target(name="b", space=tiny_space, arch="ir_e2")]
    rows = export(twins, tmp_path / "one", TINY_FAST)
    assert [r["status"] for r in rows] == ["ok", "ok"] and len(train_calls) == 1
    card_a, card_b = (json.loads((tmp_path / "one" / f"{n}-arch" / "card.json").read_text()) for n in "ab")
    assert card_a["training"] == card_b["training"] and card_a["training"]["bn_recalibration"]["samples"] == 64
    assert _bytes(tmp_path / "one" / "a-arch" / "model.onnx") == _bytes(tmp_path / "one" / "b-arch" / "model.onnx")
    # nothing leaks into the next call: it trains again, to the same weights (same seed)
    export(twins[:1], tmp_path / "two", TINY_FAST)
    assert len(train_calls) == 2
    assert _bytes(tmp_path / "two" / "a-arch" / "model.onnx") == _bytes(tmp_path / "one" / "a-arch" / "model.onnx")
    # a caller may share the trainings of several calls explicitly (e.g. one deployment as arch, one as int8)
    shared: dict = {}
    export(twins[:1], tmp_path / "arch", TINY_FAST, trained=shared)
    export(twins[:1], tmp_path / "int8", replace(TINY_FAST, dtype="int8"), trained=shared)
    assert len(train_calls) == 3 and len(shared) == 1
    assert _bytes(tmp_path / "int8" / "a-int8" / "model.onnx") == _bytes(tmp_path / "one" / "a-arch" / "model.onnx")


def test_exports_differing_only_in_bn_samples_do_not_share_a_trained_model(tiny_space, tmp_path):  # bug 7
    target = [Target(name="m", space=tiny_space, arch="ir_e2")]
    no_bn = replace(TINY_FAST, bn_samples=0)
    assert training_key("tiny-deploy", "ir_e2", TINY_FAST) != training_key("tiny-deploy", "ir_e2", no_bn)
    export(target, tmp_path / "bn", TINY_FAST)
    export(target, tmp_path / "nobn", no_bn)
    cards = {k: json.loads((tmp_path / k / "m-arch" / "card.json").read_text()) for k in ("bn", "nobn")}
    bn = cards["bn"]["training"]["bn_recalibration"]
    assert bn["samples"] == 64 and "bn_recalibration" not in cards["nobn"]["training"]
    assert bn["kept"] == (bn["val_accuracy"] >= bn["val_accuracy_training_stats"])
    same = _bytes(tmp_path / "bn" / "m-arch" / "model.onnx") == _bytes(tmp_path / "nobn" / "m-arch" / "model.onnx")
    assert same == (not bn["kept"])


def test_multi_resolution_space_trains_and_exports_at_the_arch_resolution(tmp_path_factory, tmp_path,
                                                                          train_calls):  # bug 1
    path = space_file(tmp_path_factory, MULTIRES_SPACE)
    assert load_space(path).resolutions == (8, 16)
    rows = export([Target(name="r16", space=path, arch="r16/ir_e2")], tmp_path, TINY_FAST)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    assert train_calls == [16]  # trained on 16-px images, not the space's first resolution
    for name in ("model.onnx", "model.quant.onnx"):
        assert _input_dims(tmp_path / "r16-arch" / name) == [1, 1, 16, 16]
    card = json.loads((tmp_path / "r16-arch" / "card.json").read_text())
    assert card["arch_json"]["resolution"] == 16 and card["layers"][0]["key"].startswith("conv-i16x16x1")


def test_cli_ofa_mbv3_export_at_224(tmp_path, capsys):  # bug 1, the command
    space = load_space("ofa-mbv3")
    arch = "r224/ir/" + "/".join(["ir_k3_e3-ir_k3_e3"] * 5)  # the smallest r224 member
    assert space.parse(arch).resolution == 224 and space.resolutions[0] == 160
    rc, out, err = run_cli(capsys, "export", "--space", "ofa-mbv3", "--arch", arch, "--epochs", 0, "--data",
                           "digits", "--out-dir", tmp_path, "--test-samples", 4, "--calib-samples", 2, "--rounds", 1,
                           "--quiet")
    assert rc == 0, out + err
    folder = next(tmp_path.glob("arch-*"))
    assert _input_dims(folder / "model.quant.onnx") == [1, 3, 224, 224]
    assert _input_dims(folder / "model.onnx") == [1, 3, 224, 224]


def test_qat_fine_tunes_at_the_deployed_bits_and_the_card_records_it(tmp_path):
    """--qat-epochs: after float training, fine-tuning with the deployed weights' own rounding; the card says
    how many convs trained fake-quantized and at which deployment, and the export still verifies."""
    cfg = replace(FAST, qat_epochs=1, test_samples=50, qat_n_train=32)
    rows = export([Target(name="m", space=SPACE, arch=OTHER)], tmp_path, cfg)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    card = json.loads((tmp_path / "m-arch" / "card.json").read_text())
    qat = card["training"]["qat"]
    assert qat["epochs"] == 1 and qat["deployment"] == "arch" and qat["steps"] > 0
    assert qat["n_train"] == 32 and card["training"]["n_train"] == 128  # QAT has its own image count
    assert qat["fake_quantized"]["weights"] > 0 and qat["fake_quantized"]["inputs"] > 0
    assert 0 <= qat["val_accuracy_fake_quant"] <= 1
    assert card["training"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert not list(tmp_path.rglob("*.ckpt"))  # checkpoints go once the model is written
    float_only = export([Target(name="f", space=SPACE, arch=OTHER)], tmp_path / "fp", replace(cfg, dtype="fp32"))
    fp_card = json.loads((tmp_path / "fp" / "f-fp32" / "card.json").read_text())
    assert float_only[0]["status"] == "ok" and fp_card["training"]["qat"]["epochs"] == 0  # nothing to fine-tune


def test_qat_settings_are_checked(tmp_path, capsys):
    for cfg, argument in ((replace(TINY_FAST, qat_epochs=-1), "qat_epochs"),
                          (replace(TINY_FAST, epochs=0, qat_epochs=1), "qat_epochs"),
                          (replace(TINY_FAST, qat_epochs=1, qat_lr=0.0), "qat_lr"),
                          (replace(TINY_FAST, qat_epochs=1, qat_n_train=-1), "qat_n_train")):
        with pytest.raises(NasError) as e:
            check_config(cfg)
        assert e.value.argument == argument
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--out-dir", tmp_path, "--qat-epochs", 2)
    assert rc == 2 and "--qat-epochs: quantization-aware fine-tuning starts from a trained network" in err
    assert "--epochs" in err


def test_bit_twins_train_once_and_qat_is_keyed_by_the_deployed_bits(tmp_path, train_calls):
    """TINY and OTHER differ only in one block's bits: the float network trains once for both; QAT fine-tunes
    each at its own bits (2 more runs), and a repeat of one of them reuses its QAT."""
    cfg = replace(FAST, test_samples=20)
    shared: dict = {}
    export([Target(name="a", space=SPACE, arch=TINY), Target(name="b", space=SPACE, arch=OTHER)], tmp_path / "p",
           cfg, trained=shared)
    assert len(train_calls) == 1
    qat = replace(cfg, qat_epochs=1)
    export([Target(name="a", space=SPACE, arch=TINY), Target(name="b", space=SPACE, arch=OTHER),
            Target(name="c", space=SPACE, arch=OTHER)], tmp_path / "q", qat, trained=shared)
    assert len(train_calls) == 3


def test_item9_exports_into_one_folder_keep_each_other(tmp_path):
    """Item 9: every study's trial 0 was ``trial0`` whatever the study or deployment, so a second export into
    the same folder overwrote the first, and summary.csv kept only the last run's rows. Names carry the study and
    the deployment, summary.csv is merged by name, and a folder holding another model's export is not
    overwritten."""
    cfg = replace(TINY_FAST, epochs=0, bn_samples=0)
    out = tmp_path / "out"
    a = targets_from_study(make_study(tmp_path / "a.db", [TINY], name="study-a"), "study-a", trial=0)
    b = targets_from_study(make_study(tmp_path / "b.db", [OTHER], name="study b/1"), "study b/1", trial=0)
    assert [t.name for t in a] == ["study-a-trial0"]
    assert b[0].name.startswith("study_b_1-") and b[0].name.endswith("-trial0") and b[0].name != "study_b_1-trial0"
    export(a, out, cfg)
    export(b, out, cfg)
    export(a, out, replace(cfg, dtype="int8"))
    names = ["study-a-trial0-arch", f"{b[0].name}-arch", "study-a-trial0-int8"]
    for name in names:
        assert (out / name / "card.json").is_file(), name
    cards = {n: json.loads((out / n / "card.json").read_text()) for n in names}
    assert cards[names[0]]["arch"] == TINY and cards[names[1]]["arch"] == OTHER
    assert cards[names[2]]["deployment"] == "int8" and cards[names[2]]["name"] == names[2]
    assert list(pd.read_csv(out / "summary.csv")["name"]) == names  # every run's rows
    export(a, out, cfg)  # a re-export replaces its own row
    assert list(pd.read_csv(out / "summary.csv")["name"]) == names
    clash = targets_from_study(make_study(tmp_path / "c.db", [OTHER], name="study-a"), "study-a", trial=0)
    rows = export(clash, out, cfg)  # the same study name and trial in another storage: another model
    assert rows[0]["status"] == "error" and "holds the export of another model" in rows[0]["error"]
    assert json.loads((out / names[0] / "card.json").read_text())["arch"] == TINY


def test_item9_a_failed_re_export_leaves_the_previous_set_whole(tmp_path, monkeypatch):
    """Item 9: model.onnx and model.quant.onnx were written in place: a re-export that failed after the fp32
    file left a new fp32 file beside the old quantized one and the old card. A model's files are written in
    ``<name>.partial`` and replace the folder as a set once its card is written."""
    import nas.deploy.pipeline as pipeline

    cfg = replace(TINY_FAST, epochs=0, bn_samples=0)
    target = [Target(name="m", space=SPACE, arch=TINY)]
    assert export(target, tmp_path, cfg)[0]["status"] == "ok"
    folder = tmp_path / "m-arch"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(before) == {"model.onnx", "model.quant.onnx", "card.json"}

    def interrupted(*args, **kwargs):  # the machine stops after both model files were written
        raise RuntimeError("timing interrupted")

    monkeypatch.setattr(pipeline, "measure_latency", interrupted)
    rows = export(target, tmp_path, replace(cfg, seed=1))  # other weights: other bytes
    assert rows[0]["status"] == "error" and "timing interrupted" in rows[0]["error"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    partial = tmp_path / "m-arch.partial"
    assert (partial / "model.onnx").read_bytes() != before["model.onnx"] and (partial / "error.txt").is_file()
    monkeypatch.undo()
    assert export(target, tmp_path, replace(cfg, seed=1))[0]["status"] == "ok"
    assert not partial.exists() and (folder / "model.onnx").read_bytes() != before["model.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-arch", "summary.csv"]
