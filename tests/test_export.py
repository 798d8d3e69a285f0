"""nas export on tiny real data (digits, E=1, a small mobilenet-c10 member): files, cards, errors."""
from __future__ import annotations

import json
import re

import numpy as np
import onnx
import optuna
import pandas as pd
import pytest
from onnx import TensorProto

from conftest import run_cli
from nas.errors import NasError
from nas.deploy import ExportConfig, export, targets_from_study
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.layers import plan
from nas.nn.onnx import ort_session, run_onnx
from nas.space import load_space

SPACE = "mobilenet-c10"
# smallest widths and depths, every bit-width pair of the space somewhere
TINY = ("ir_k3_se0_relu6_w8_a8/c16:ir_k3_e1_se0_relu6_w4_a8/c32:ir_k3_e1_se0_relu_w8_a32-ir_k3_e1_se0_relu6_w4_a32"
        "/c64:ir_k3_e1_se0_relu6_w32_a8-ir_k3_e1_se0_relu6_w32_a32/c96:ir_k3_e1_se0_relu6_w8_a8-"
        "ir_k3_e1_se0_relu6_w8_a8/c160:ir_k3_e1_se0_relu6_w8_a8-ir_k3_e1_se0_hswish_w8_a8/c160:"
        "ir_k3_e1_se0_relu6_w8_a8")
OTHER = TINY.replace("_w8_a8/c160:", "_w4_a8/c160:", 1)  # a second Pareto member
FAST = ExportConfig(epochs=1, data="digits", n_train=128, calib_samples=16, rounds=1, warmup=1, repeats=3,
                    progress=False)
WTYPE = {4: TensorProto.INT4, 8: TensorProto.INT8, 32: TensorProto.FLOAT}
CARD_KEYS = {"name", "space", "arch", "arch_json", "deployment", "params", "macs", "size_bytes_analytic", "layers",
             "bit_widths", "files", "training", "onnx_check", "quantization", "accuracy", "latency", "provenance"}


def make_study(path, archs: list[str], *, feasible: bool = True, device: str = "dev") -> str:
    """A study as `nas search` writes it (config attribute; arch / metrics / provenance per trial)."""
    storage = f"sqlite:///{path}"
    study = optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"])
    study.set_user_attr("config", {"space": SPACE, "devices": [device], "objectives": ["proxy", "latency"],
                                   "proxy": "params", "data": "digits", "latency_dtype": "arch"})
    for i, a in enumerate(archs):
        metrics = {"proxy.params": 1000.0 + i, "latency_ms.dev" if device == "dev" else f"latency_ms.{device}":
                   1.0 + i, "feasible": feasible, "duplicate": False}
        study.add_trial(optuna.trial.create_trial(
            values=[1000.0 + i, 1.0 + i], user_attrs={"arch": a, "metrics": metrics,
                                                     "provenance": {"space": SPACE, "worker": 0}}))
    return storage


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("lut")
    pd.DataFrame({"arch": [TINY]}).to_csv(d / "a.csv", index=False)
    return profile_space(SPACE, "tiny", dtypes=["arch", "fp32"], archs_csv=str(d / "a.csv"),
                         config=ProfileConfig(threads=1, warmup=1, repeats=3, rounds=1), out_dir=d, progress=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, table):
    d = tmp_path_factory.mktemp("export")
    storage = make_study(d / "s.db", [TINY, OTHER, "not-an-arch"])
    targets = targets_from_study(storage, "s", top_k=3)
    for t in targets:
        t.devices = [str(table)]
    rows = export(targets, d / "out", FAST)
    return d / "out", rows, targets


def test_study_export_writes_files_cards_and_summary(exported):
    out, rows, targets = exported
    assert [t.name for t in targets] == ["trial0", "trial1", "trial2"]
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["status"]) == ["ok", "ok", "error"]  # the broken trial does not lose the others
    assert "not-an-arch" in summary["error"][2] and not (out / "trial2" / "card.json").exists()
    card = json.loads((out / "trial0" / "card.json").read_text())
    assert CARD_KEYS <= set(card)
    space = load_space(SPACE)
    specs = plan(space.parse(TINY), space)
    assert card["arch"] == TINY and card["params"] == sum(s.params() for s in specs)
    assert card["macs"] == sum(s.macs() for s in specs) == int(summary["macs"][0])
    assert [(l["wbits"], l["abits"]) for l in card["layers"]] == [(s.wbits, s.abits) for s in specs]
    assert card["bit_widths"] == {"int8": 9, "w4a8": 1, "w8a32": 1, "w4a32": 1, "w32a8": 1, "fp32": 1}
    for name in ("model.onnx", "model.quant.onnx"):
        assert card["files"][name] == (out / "trial0" / name).stat().st_size
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
    assert pred["quantized_ms"] > 0 and pred["fp32_ms"] > 0  # the profiled table covers TINY at its bits
    prov = card["provenance"]
    assert prov["study"] == "s" and prov["trial"] == 0 and prov["trial_attrs"]["provenance"]["space"] == SPACE
    # OTHER's int4 layer is not in the table: the prediction is missing, with the reason, the export is fine
    pred1 = json.loads((out / "trial1" / "card.json").read_text())["latency"]["predicted_ms"]
    assert next(iter(pred1.values()))["quantized_ms"] is None and "no entry" in next(iter(pred1.values()))["quantized_error"]


def test_quantized_file_runs_and_stores_integers_per_layer(exported):
    out = exported[0]
    space = load_space(SPACE)
    specs = plan(space.parse(TINY), space)
    m = onnx.load(str(out / "trial0" / "model.quant.onnx"))
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
        assert run_onnx(ort_session(out / "trial0" / name), x).shape == (1, 10)


def test_cli_arch_export_and_int8_deployment(tmp_path, capsys):
    rc, out, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "-o", tmp_path, "--epochs", 1,
                           "--data", "digits", "--n-train", 64, "--calib-samples", 8, "--rounds", 1, "--dtype",
                           "int8", "--test-samples", 50, "--quiet")
    assert rc == 0, err
    card = json.loads(next(tmp_path.glob("arch-*/card.json")).read_text())
    assert card["deployment"] == "int8" and set(card["bit_widths"]) == {"int8"}
    assert card["accuracy"]["n"] == 50 and card["provenance"]["source"] == "--arch"
    assert "summary.csv" in out


def test_unknown_study_trial_and_empty_front(tmp_path, capsys):
    storage = make_study(tmp_path / "s.db", [TINY])
    with pytest.raises(NasError, match="no study 'nope'"):
        targets_from_study(storage, "nope", top_k=1)
    with pytest.raises(NasError, match=r"no finished trial 7 in study 's' \(1 finished trials"):
        targets_from_study(storage, "s", trial=7)
    assert targets_from_study(storage, "s", trial=0)[0].arch == TINY
    empty = make_study(tmp_path / "e.db", [TINY], feasible=False)
    rc, _, err = run_cli(capsys, "export", "--storage", empty, "--study", "s", "-o", tmp_path / "o")
    assert rc == 2 and "empty Pareto front" in err and err.count("\n") == 1


def test_arch_not_in_space_and_missing_dataset(tmp_path, capsys, monkeypatch):
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY.replace("c96", "c999"), "-o", tmp_path)
    assert rc == 2 and "not an architecture of space 'mobilenet-c10'" in err and err.count("\n") == 1
    monkeypatch.setenv("NAS_FASHION_MNIST_DIR", str(tmp_path / "none"))
    import nas.data.datasets

    nas.data.datasets._fashion.cache_clear()
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "-o", tmp_path / "o", "--data",
                         "fashion-mnist")
    nas.data.datasets._fashion.cache_clear()
    assert rc == 2 and "Fashion-MNIST is not installed" in err and "dataset-fashion-mnist" in err
    assert not (tmp_path / "o" / "summary.csv").exists()


def test_one_failed_model_makes_the_cli_fail_after_writing_the_others(tmp_path, capsys):
    storage = make_study(tmp_path / "s.db", [TINY, "bad"])
    rc, out, err = run_cli(capsys, "export", "--storage", storage, "--study", "s", "--top-k", 2, "-o", tmp_path / "o",
                           "--epochs", 0, "--data", "digits", "--calib-samples", 4, "--rounds", 1, "--test-samples",
                           20, "--quiet")
    assert rc == 2 and "1 of 2 model(s) failed: trial1" in err
    assert (tmp_path / "o" / "trial0" / "model.quant.onnx").is_file() and "trial1: FAILED" in out
