"""nas.train.loop: a real, deterministic training loop that learns (digits, tiny budget), and the one accuracy
loop that both PyTorch models and onnxruntime sessions are scored with."""
import numpy as np
import pytest
import torch

from nas.data import datasets
from nas.errors import NasError
from nas.nn.build import build_model
from nas.train.loop import accuracy, evaluate, lr_schedule, param_groups, split_indices, train


@pytest.fixture(scope="module")
def space(train_space):
    return train_space


def test_train_learns_and_is_deterministic(space):
    arch = space.parse("ir_e2")
    untrained = evaluate(build_model(arch, space, seed=0), "digits", split="train")
    r1 = train(build_model(arch, space, seed=0), epochs=3, data="digits", n_train=800, n_val=300, batch_size=32)
    r2 = train(build_model(arch, space, seed=0), epochs=3, data="digits", n_train=800, n_val=300, batch_size=32)
    assert r1["accuracy"] == r2["accuracy"] and r1["loss"] == r2["loss"]
    assert r1["accuracy"] > max(0.4, untrained + 0.2)
    assert r1["n_train"] == 800 and r1["n_val"] == 287 and r1["steps"] == 3 * 25  # n_val capped at 1/5 of 1437


def test_validation_is_held_out():
    tr, val = split_indices(100, 20, seed=0)
    assert len(set(tr) & set(val)) == 0 and len(tr) == 80 and len(val) == 20


def test_accuracy_takes_logits_or_labels_from_torch_or_numpy_in_batches():
    d = datasets.load("digits", split="test", resolution=8, channels=1)
    idx = np.arange(0, 100, 3)  # 34 images, batches of 8: the last one short
    labels = d.batch(idx)[1]
    seen = []

    def oracle_logits(x):  # right on the first 20 images it sees, wrong afterwards
        seen.append(len(x))
        y = [int(v) for v in d.y[idx[sum(seen) - len(x):sum(seen)]]]
        out = torch.zeros(len(x), 10)
        for i, v in enumerate(y):
            out[i, v if sum(seen) - len(x) + i < 20 else (v + 1) % 10] = 1.0
        return out

    assert accuracy(oracle_logits, d, idx, 8) == pytest.approx(20 / 34)
    assert seen == [8, 8, 8, 8, 2]
    assert accuracy(lambda x: np.zeros((len(x), 10), np.float32), d, idx, 8) == pytest.approx(
        float((labels == 0).float().mean()))  # numpy logits: argmax 0
    assert accuracy(lambda x: np.full(len(x), 3), d, idx, 5) == pytest.approx(float((labels == 3).float().mean()))
    assert accuracy(lambda x: torch.zeros(len(x), 10), d, [], 8) == 0.0  # no images: 0, not a division error


def test_evaluate_is_the_accuracy_loop_on_the_model(space):
    model = build_model(space.parse("ir_e2"), space, seed=0)
    d = datasets.load("digits", split="test", resolution=8, channels=1)
    idx = np.arange(50)
    with torch.no_grad():
        expected = float((model.eval()(d.batch(idx)[0]).argmax(1) == d.batch(idx)[1]).float().mean())
    assert evaluate(model, d, indices=idx, batch_size=7) == pytest.approx(expected)
    assert evaluate(model, "digits", indices=idx) == evaluate(model, d, indices=idx)
    with torch.no_grad():
        assert accuracy(model, d, idx, 256) == evaluate(model, d, indices=idx)


def test_recipe_parts_param_groups_and_schedule(space):
    model = build_model(space.parse("ir_e2"), space, seed=0)
    decay, no_decay = param_groups(model, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    assert all(p.dim() > 1 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    lr_at = lr_schedule(0.1, 100)  # warm-up 3 steps, cosine to 0
    assert [lr_at(s) for s in range(3)] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert lr_at(3) == pytest.approx(0.1) and lr_at(99) == pytest.approx(0.5 * 0.1 * (1 + np.cos(np.pi * 96 / 97)))


def test_train_needs_an_epoch_and_names_the_argument(space):
    with pytest.raises(NasError, match="epochs must be at least 1, got 0") as e:
        train(build_model(space.parse("ir_e1"), space, seed=0), epochs=0, data="digits")
    assert e.value.argument == "epochs" and "--" not in str(e.value)


def test_channels_last_training_learns_as_well_and_returns_the_default_layout(space):
    arch = space.parse("ir_e2")
    cl, plain = build_model(arch, space, seed=0), build_model(arch, space, seed=0)
    r_cl = train(cl, epochs=3, data="digits", n_train=800, n_val=300, batch_size=32)
    r_plain = train(plain, epochs=3, data="digits", n_train=800, n_val=300, batch_size=32, channels_last=False)
    assert abs(r_cl["accuracy"] - r_plain["accuracy"]) < 0.05 and r_cl["accuracy"] > 0.4
    convs = [m.weight for m in cl.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
    assert convs and all(w.is_contiguous() for w in convs)


def test_interrupted_training_resumes_to_the_same_weights(space, tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 of 3 keeps epoch 1's checkpoint; the same call again resumes there and ends with the
    weights of an uninterrupted run. A checkpoint of another recipe is not resumed."""
    import nas.train.loop as T

    arch = space.parse("ir_e2")
    opts = dict(epochs=3, data="digits", n_train=256, n_val=100, batch_size=32)
    whole = build_model(arch, space, seed=0)
    ref = train(whole, **opts)
    real, calls = T.train_epoch, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    ckpt = tmp_path / "train.ckpt"
    monkeypatch.setattr(T, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(build_model(arch, space, seed=0), checkpoint=ckpt, **opts)
    monkeypatch.setattr(T, "train_epoch", real)
    assert ckpt.is_file()
    resumed_model = build_model(arch, space, seed=0)
    resumed = train(resumed_model, checkpoint=ckpt, **opts)
    assert resumed["resumed_from_epoch"] == 1 and resumed["steps"] == ref["steps"]
    # the cost counts the interrupted run's finished epoch too, not only the resumed run's
    saved = torch.load(ckpt, weights_only=True)["seconds"]
    assert 0 < resumed["seconds_before_resume"] and resumed["seconds"] > resumed["seconds_before_resume"]
    assert ref["seconds_before_resume"] == 0.0 and resumed["seconds_before_resume"] < saved <= resumed["seconds"]
    for (k, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed["accuracy"] == ref["accuracy"]
    other = train(build_model(arch, space, seed=0), checkpoint=ckpt, **{**opts, "lr": 0.05})
    assert other["resumed_from_epoch"] == 0  # another recipe: trained afresh


def test_a_run_killed_mid_epoch_resumes_there_to_the_same_weights(space, tmp_path, monkeypatch):
    """With ``checkpoint_seconds`` passed, the checkpoint is also written within an epoch: a kill right after the
    third batch's write resumes at that batch (not the epoch's start) and ends as an uninterrupted run."""
    import nas.train.loop as T

    arch = space.parse("ir_e2")
    opts = dict(epochs=2, data="digits", n_train=256, n_val=100, batch_size=32)
    whole = build_model(arch, space, seed=0)
    ref = train(whole, **opts)
    real, writes = T._save_checkpoint, []

    def killed_after_third_write(path, state):
        real(path, state)
        writes.append(state["pos"])
        if len(writes) == 3:
            raise KeyboardInterrupt

    ckpt = tmp_path / "train.ckpt"
    monkeypatch.setattr(T, "_save_checkpoint", killed_after_third_write)
    with pytest.raises(KeyboardInterrupt):
        train(build_model(arch, space, seed=0), checkpoint=ckpt, checkpoint_seconds=0, **opts)
    monkeypatch.setattr(T, "_save_checkpoint", real)
    assert writes == [32, 64, 96] and torch.load(ckpt, weights_only=True)["epoch"] == 0
    epochs_run, real_epoch = [], T.train_epoch

    def spy(*a, **k):
        epochs_run.append(k["start"])
        return real_epoch(*a, **k)

    monkeypatch.setattr(T, "train_epoch", spy)
    resumed_model = build_model(arch, space, seed=0)
    resumed = train(resumed_model, checkpoint=ckpt, checkpoint_seconds=0, progress=True, **opts)
    assert epochs_run == [96, 0]  # epoch 1 from its fourth batch, then epoch 2 whole
    assert resumed["steps"] == ref["steps"] and resumed["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    for (k, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), k
    assert resumed["accuracy"] == ref["accuracy"]
    assert torch.load(ckpt, weights_only=True)["pos"] == 0  # the last write is the last epoch's end


def test_training_device_is_checked():
    from nas.train.loop import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NasError, match="unknown training device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(NasError, match="CUDA was asked for"):
            resolve_device("cuda")


class _RunsCode:
    """A pickle payload that would create a file when unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_item11_a_planted_checkpoint_cannot_run_code(space, tmp_path):
    """Reliability 11: a train.ckpt that carries code is refused by name; the code never runs."""
    arch = space.parse("ir_e2")
    ckpt, marker = tmp_path / "train.ckpt", tmp_path / "pwned"
    torch.save({"fingerprint": {}, "payload": _RunsCode(marker)}, ckpt)
    with pytest.raises(NasError, match="train.ckpt.*loaded safely"):
        train(build_model(arch, space, seed=0), epochs=1, data="digits", n_train=64, n_val=32, checkpoint=ckpt)
    assert not marker.exists()


def test_item11_an_unreadable_checkpoint_is_an_error_not_a_restart(space, tmp_path, monkeypatch):
    """Reliability 11: a permission error (or a foreign file) names the checkpoint instead of training afresh."""
    arch = space.parse("ir_e2")
    ckpt = tmp_path / "train.ckpt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(NasError, match="train.ckpt"):
        train(build_model(arch, space, seed=0), epochs=1, data="digits", n_train=64, n_val=32, checkpoint=ckpt)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(torch, "load", denied)
    with pytest.raises(NasError, match="cannot read the training checkpoint: .*Permission denied"):
        train(build_model(arch, space, seed=0), epochs=1, data="digits", n_train=64, n_val=32, checkpoint=ckpt)
