"""nas.deploy.card: the model card (sums, layers, bit-widths, sections, provenance) and the summary row."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from nas.deploy import Target
from nas.deploy.card import (CARD_NAME, CARD_VERSION, FP32_NAME, QUANT_NAME, bit_histogram, build_card, layer_rows,
                             provenance, summary_row, write_card)
from nas.latency.signatures import deploy
from nas.layers import count, plan
from nas.space import load_space
from helpers_deploy import CARD_KEYS, SPACE, TINY, space_file


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_space(space_file(tmp_path_factory))


def test_bit_histogram_counts_layers_with_weights_per_label():
    space = load_space(SPACE)
    specs = plan(space.parse(TINY), space)
    assert bit_histogram(specs) == {"int8": 9, "w4a8": 1, "w8a32": 1, "w4a32": 1, "w32a8": 1, "fp32": 1}
    assert bit_histogram([deploy(s, "int8") for s in specs]) == {"int8": 14}
    assert bit_histogram([deploy(s, "fp32") for s in specs]) == {"fp32": 14}


def test_layer_rows_label_what_computes_and_dash_an_identity_skip(tiny):
    specs = plan(tiny.parse("skip-skip"), tiny)  # a projecting skip (stride 2, 8 -> 16), then an identity
    rows = layer_rows(specs)
    assert [r["op"] for r in rows] == ["conv", "skip", "skip", "pool", "linear"]
    assert [r["deployed"] for r in rows] == ["fp32", "fp32", "-", "fp32", "fp32"]
    assert [r["key"] for r in rows] == [s.key for s in specs]
    assert bit_histogram(specs) == {"fp32": 3}  # the identity skip and the pool have no weights


def test_build_card_sums_through_count_and_keeps_the_section_order(tiny, tmp_path):
    arch = tiny.parse("ir_e2")
    specs = plan(arch, tiny)
    (tmp_path / FP32_NAME).write_bytes(b"x" * 400)
    (tmp_path / QUANT_NAME).write_bytes(b"x" * 100)
    target = Target(name="m", space=tiny.name, arch=tiny.format(arch), provenance={"source": "--arch"})
    sections = {k: {"k": k} for k in ("training", "onnx_check", "quantization", "accuracy", "latency")}
    card = build_card(target, tiny, arch, specs, deployment="arch", folder=tmp_path, sections=sections)
    cost = count(arch, tiny)
    assert (card["params"], card["macs"], card["size_bytes_analytic"]) == (cost.params, cost.macs, cost.size_bytes)
    assert set(card) == CARD_KEYS | {"card_version"} and card["card_version"] == CARD_VERSION
    assert list(card)[-6:] == ["training", "onnx_check", "quantization", "accuracy", "latency", "provenance"]
    assert card["files"] == {FP32_NAME: 400, QUANT_NAME: 100, "size_ratio": 0.25}
    assert card["arch"] == "ir_e2" and card["arch_json"]["resolution"] == 8 and card["deployment"] == "arch"
    assert card["provenance"]["source"] == "--arch" and "exported" in card["provenance"]
    card["training"]["loss"] = np.float32(0.5)  # numpy scalars are written as plain numbers
    write_card(tmp_path, card)
    assert json.loads((tmp_path / CARD_NAME).read_text())["training"]["loss"] == 0.5


def test_provenance_of_a_lost_study_is_best_effort(tmp_path):
    t = Target(name="trial3", space=SPACE, arch=TINY, provenance={"source": "study", "storage":
                                                                   f"sqlite:///{tmp_path}/none.db", "study": "s",
                                                                   "trial": 3})
    prov = provenance(t)
    assert prov["trial"] == 3 and "trial_attrs_error" in prov and "trial_attrs" not in prov


def test_summary_row_of_a_failed_and_of_an_exported_model():
    t = Target(name="trial1", space=SPACE, arch=TINY, provenance={"trial": 1})
    assert summary_row(t, None, "boom") == {"name": "trial1", "status": "error", "error": "boom", "trial": 1,
                                            "arch": TINY}
    card = {"params": 10, "macs": 20, "files": {FP32_NAME: 400, QUANT_NAME: 100, "size_ratio": 0.25},
            "accuracy": {"fp32": 0.9, "quantized": 0.8, "drop_points": 10.0},
            "latency": {"measured_ms": {"fp32": 2.0, "quantized": 1.0}, "speedup": 2.0,
                        "predicted_ms": {"dev": {"quantized_ms": 1.1, "fp32_ms": None}}}}
    row = summary_row(t, card, None)
    assert row["status"] == "ok" and row["speedup"] == 2.0 and row["quant_bytes"] == 100
    assert row["predicted_quant_ms.dev"] == 1.1 and row["predicted_fp32_ms.dev"] is None


def test_card_names_per_role_bits_and_the_containers_of_6_and_4_bit_values():
    import json

    from nas.deploy.card import bit_histogram, containers, layer_rows
    from nas.layers import plan
    from nas.space import load_space

    space = load_space("apq")
    spec = json.loads(space.to_native(space.sample_many(1, seed=0)[0]))
    spec.update(pw_w_bits_setting=[6] * 21, pw_a_bits_setting=[8] * 21, dw_w_bits_setting=[8] * 21,
                dw_a_bits_setting=[4] * 21, ks=[3] * 21)
    specs = plan(space.parse(json.dumps(spec)), space)
    hist = bit_histogram(specs)
    assert hist["w6a8/dw w8a4"] == sum(st for st in spec["d"][:5]) + 1
    assert set(containers(specs)) == {"w6", "a4"} and "-31..31" in containers(specs)["w6"]
    row = next(r for r in layer_rows(specs) if r["name"] == "stage1.block0")
    assert (row["wbits"], row["dw_wbits"], row["dw_abits"], row["deployed"]) == (6, 8, 4, "w6a8/dw w8a4")


@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="NAS_TEST_POSTGRES_URL not set (CI starts a server)")
def test_item8_card_provenance_masks_the_storage_password():
    """Item 8: card.json's provenance stored the study's storage URL with its password."""
    import uuid

    import optuna
    from sqlalchemy.engine import make_url

    from nas.deploy import targets_from_study
    from nas.deploy.card import provenance
    from nas.search.storage import open_storage

    url = make_url(os.environ["NAS_TEST_POSTGRES_URL"]).set(password="s3cret-item8")
    url = url.render_as_string(hide_password=False)
    name = f"item8-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=open_storage(url), study_name=name,
                                directions=["maximize", "minimize"])
    study.set_user_attr("config", {"space": SPACE, "devices": ["dev"], "objectives": ["proxy", "latency"],
                                   "proxy": "params", "data": "digits", "latency_dtype": "arch"})
    study.add_trial(optuna.trial.create_trial(values=[1.0, 1.0], user_attrs={
        "arch": TINY, "metrics": {"proxy.params": 1.0, "latency_ms.dev": 1.0, "feasible": True, "duplicate": False},
        "provenance": {"space": SPACE, "worker": 0}}))
    prov = provenance(targets_from_study(url, name, trial=0)[0])
    assert prov["trial_attrs"]["metrics"]["latency_ms.dev"] == 1.0  # looked up with the real URL
    assert prov["storage"] == url.replace(":s3cret-item8@", ":***@")
    assert "s3cret-item8" not in json.dumps(prov)


@pytest.mark.parametrize("failed", ["quantized", "fp32"])
def test_item14_a_failed_measurement_is_untimed_on_the_card_and_the_summary_never_0(tiny, tmp_path, failed):
    """The pipeline's latency section with a file that could not be timed (NaN from measure_onnx, whose
    failures say why): the card says None and why, no speedup, and stays strict JSON; the summary row too."""
    from nas.latency.measure.timing import TOO_FAST

    arch = tiny.parse("ir_e2")
    (tmp_path / FP32_NAME).write_bytes(b"x" * 400)
    (tmp_path / QUANT_NAME).write_bytes(b"x" * 100)
    ms = {"fp32": 2.0, "quantized": 1.0, failed: float("nan")}
    latency = {"measured_ms": ms, "measured_iqr_ms": {k: 0.1 if v == v else v for k, v in ms.items()},
               "speedup": ms["fp32"] / ms["quantized"] if ms["quantized"] > 0 else None, "predicted_ms": {}}
    sections = {"accuracy": {"fp32": 0.9, "quantized": 0.8, "drop_points": 10.0}, "latency": latency}
    target = Target(name="m", space=tiny.name, arch=tiny.format(arch), provenance={"source": "--arch"})
    card = build_card(target, tiny, arch, plan(arch, tiny), deployment="arch", folder=tmp_path, sections=sections)
    lat = card["latency"]
    assert lat["measured_ms"][failed] is None and lat["measured_iqr_ms"][failed] is None
    assert lat["measurement_failed"] == {failed: TOO_FAST} and lat["speedup"] is None
    write_card(tmp_path, card)
    json.loads((tmp_path / CARD_NAME).read_text(), parse_constant=lambda c: pytest.fail(f"{c} in card.json"))
    row = summary_row(target, card, None)
    assert row["status"] == "ok" and row[f"{'quant' if failed == 'quantized' else 'fp32'}_ms"] is None
    assert row["speedup"] is None and row["latency_error"] == f"{failed}: {TOO_FAST}"


def test_item15_a_cards_provenance_copies_no_trials(tmp_path, monkeypatch):
    """Each card's provenance listed the study three times with deep copies of every trial (``study.trials``);
    now the chosen trials' attributes are read with the targets, one trial each, and the card reads nothing."""
    import optuna

    from nas.deploy import targets_from_study
    from nas.deploy.targets import trial_attrs

    from helpers_deploy import OTHER, make_study

    storage = make_study(tmp_path / "s.db", [TINY, OTHER] * 20)
    listings = []
    real = optuna.study.Study.get_trials
    monkeypatch.setattr(optuna.study.Study, "get_trials",
                        lambda self, deepcopy=True, states=None: listings.append(deepcopy) or real(self, deepcopy, states))
    targets = targets_from_study(storage, "s", top_k=2)
    assert listings == [False]  # the front's one listing, no copies
    for t in targets:
        prov = provenance(t)
        assert prov["trial_attrs"]["provenance"] == {"space": SPACE, "worker": 0}
        assert prov["trial_attrs"]["metrics"]["latency_ms.dev"] == 1.0 + prov["trial"]
    t = Target(name="m", space=SPACE, arch=TINY, provenance={"source": "study", "storage": storage, "study": "s",
                                                             "trial": 37})
    assert provenance(t)["trial_attrs"] == trial_attrs(storage, "s", 37)  # a hand-made target: that trial alone
    assert trial_attrs(storage, "s", 37)["metrics"]["latency_ms.dev"] == 38.0
    assert listings == [False]
