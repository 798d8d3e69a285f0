"""A new user's own data through the CLI: score, search and export on a 3-class folder of PNGs (and an .npz),
ending in a 3-output ONNX model whose card says how the resized classifier was priced."""
import json

import numpy as np
import optuna
import pandas as pd
import pytest
from PIL import Image

from conftest import run_cli
from helpers_deploy import SPACE, TINY
from nas.nn.onnx import ort_session, run_onnx


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """3 classes x 10 PNGs (12x12 grey, one 14x14 colour image), each class a different brightness band."""
    root = tmp_path_factory.mktemp("data") / "my_images"
    rng = np.random.default_rng(0)
    for k, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(rng.normal(60 + 70 * k, 20, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    Image.new("RGB", (14, 14), (200, 10, 10)).save(root / "cat" / "colour.png")
    return root


def test_score_search_and_export_on_a_folder_of_pngs(images, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"arch": [TINY]}).to_csv(tmp_path / "a.csv", index=False)
    rc, out, err = run_cli(capsys, "score", "--space", SPACE, "--archs", tmp_path / "a.csv", "--data", images,
                           "--quiet", "-o", tmp_path / "s.csv")
    assert rc == 0, err
    assert "score = qnaswot" in out and np.isfinite(pd.read_csv(tmp_path / "s.csv")["score"]).all()

    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--device", "x86-2vcpu", "--data", images,
                         "--epochs", 2, "--calib-samples", 8, "--rounds", 1, "--quiet", "-o", tmp_path / "out")
    assert rc == 0, err
    folder = next((tmp_path / "out").glob("arch-*"))
    card = json.loads((folder / "card.json").read_text())
    assert card["num_classes"] == 3 and card["accuracy"]["n"] == 6  # the seeded 20 % hold-out of 31 images
    notes = card["latency"]["predicted_ms"]["x86-2vcpu"]["quantized_notes"]
    assert any("scaled from the table's 10 outputs to 3" in n for n in notes)
    x = np.zeros((1, 3, 32, 32), np.float32)
    for name in ("model.onnx", "model.quant.onnx"):
        assert run_onnx(ort_session(folder / name), x).shape == (1, 3)


def test_search_on_an_npz(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "data.npz", x=rng.integers(0, 256, (40, 20, 20, 3), dtype=np.uint8), y=np.arange(40) % 4)
    storage = f"sqlite:///{tmp_path}/s.db"
    rc, _, err = run_cli(capsys, "search", "--space", SPACE, "--device", "x86-2vcpu", "--trials", "3", "--data",
                         tmp_path / "data.npz", "--storage", storage, "--quiet")
    assert rc == 0, err
    study = optuna.load_study(study_name=f"{SPACE}-x86-2vcpu", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and study.user_attrs["config"]["proxy"] == "qnaswot"
    assert all("to 4 (x0.4)" in t.user_attrs["metrics"]["latency_notes.x86-2vcpu"] for t in done)


def test_bad_data_is_one_line_naming_the_flag(images, tmp_path, capsys):
    (images.parent / "broken").mkdir()
    for name in ("a", "b"):
        (images.parent / "broken" / name).mkdir()
        (images.parent / "broken" / name / "1.png").write_bytes(b"junk")
    rc, _, err = run_cli(capsys, "export", "--space", SPACE, "--arch", TINY, "--data", images.parent / "broken",
                         "--out-dir", tmp_path / "o", "--quiet")
    assert rc == 2 and "--data" in err and "cannot read image" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
