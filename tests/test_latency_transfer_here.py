"""A table adapted to this host in one command (nas.latency.transfer.here, `nas lut adapt --measure-here`), end to
end on a tiny space profiled here: which networks, the measurements kept beside the model and reused, the host
fingerprint and the units it records, every dtype, and the README main job's adapt-then-search on a tiny space."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from nas.errors import NasError
from nas.latency.load import load as load_latency
from nas.latency.measure import validate as V
from nas.latency.measure.host import fingerprint
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.latency.table import read_table
from nas.latency.transfer import here as HERE
from nas.latency.transfer.adapt import adapt
from nas.latency.transfer.model import TransferredLatencyModel
from nas.latency.transfer.here import uniform_twins
from nas.latency.transfer.precision import part_of
from nas.layers import plan
from nas.space import load_space

TINY = """\
name: tiny-here
description: A 16-px space small enough to profile and measure in seconds (mixed bits, like mobilenet-c10).
input: {resolution: 16, channels: 3}
num_classes: 10
block: {op: ir, kernel: [3, 5], expand: [1, 3], act: relu, wbits: [4, 8, 32], abits: [8, 32]}
stem:
  - {op: conv, kernel: 3, stride: 1, width: 8, act: relu, wbits: 8, abits: 8}
stages:
  - {width: [8, 16], depth: [1, 2], stride: 2}
head:
  - {op: conv, kernel: 1, width: 64, act: relu, wbits: 8, abits: 8}
  - {op: pool}
  - {op: linear, wbits: 8, abits: 8}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(space file, table CSV): the tiny space and its table, profiled here once for the module (all its
    signatures at their own bits, fp32 and int8)."""
    d = tmp_path_factory.mktemp("tiny-here")
    space = d / "tiny.yaml"
    space.write_text(TINY)
    cfg = ProfileConfig(threads=1, warmup=1, repeats=5, rounds=2)
    result = profile_space(str(space), "tinycpu", dtypes=["arch", "fp32", "int8"], config=cfg, out_dir=d,
                           progress=False)
    if result.dropped:  # a layer that ran no longer than the per-call overhead twice: measure it once more
        result = profile_space(str(space), "tinycpu", dtypes=["arch", "fp32", "int8"], config=cfg, out_dir=d,
                               progress=False)
    assert not result.dropped, result.dropped
    return space, result.path


def test_pick_spans_latency_and_precision_with_uniform_twins():
    space = load_space("mobilenet-c10")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # x86-2vcpu is not this host's: not the point here
        model = load_latency("x86-2vcpu")
    archs = HERE.pick(space, 20, [model], seed=3)
    assert len(set(archs)) == 20 and archs == HERE.pick(space, 20, [model], seed=3)
    parts = [{part_of(s) for s in plan(a, space) if s.computes and s.op == "ir"} for a in archs]
    # n // 5 drawn networks also as their all-w8a8 and all-w32a32 twins; the others as drawn (mixed bits)
    assert parts.count({"int8"}) == 4 and parts.count({"float"}) == 4 and sum(len(p) > 1 for p in parts) == 12
    mixed = [a for a, p in zip(archs, parts) if len(p) > 1]
    for twin in [a for a, p in zip(archs, parts) if len(p) == 1]:
        assert sum(uniform_twins(m, space).count(twin) for m in mixed) == 1  # the twin of a measured network
    lat = sorted(model.predict(a, space).latency_ms for a in archs)
    pool = sorted(model.predict(a, space).latency_ms for a in space.sample_many(300, seed=3))
    assert lat[0] <= pool[len(pool) // 20] and lat[-1] >= pool[-len(pool) // 20]  # the extremes are in
    with pytest.raises(NasError, match="must be at least 3") as exc:
        HERE.pick(space, 2, [model])
    assert exc.value.argument == "n"


def _no_measuring(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("measured although the measurements could be reused")

    monkeypatch.setattr(V, "measure_networks", fail)


@pytest.mark.slow
def test_measure_here_end_to_end_on_a_tiny_space(tiny, tmp_path, monkeypatch):
    space_path, table = tiny
    space = load_space(space_path)
    out = tmp_path / "here.transfer.yaml"
    r = HERE.adapt_here(str(space_path), 6, "here", out, sources=[str(table)], rounds=2, progress=False)
    assert not r.reused and r.measured_csv == tmp_path / "here.measured.csv"
    df = pd.read_csv(r.measured_csv)
    assert list(df.columns) == ["arch", "latency_ms", "iqr_ms", "reference_ms"] and (df["latency_ms"] > 0).all()
    side = yaml.safe_load((tmp_path / "here.measured.yaml").read_text())
    assert side["host_fingerprint"] == fingerprint(1) and side["arguments"]["n"] == 6
    doc = r.model.doc
    assert doc["host_fingerprint"] == fingerprint(1) and "host" not in doc
    # its units: ratios x this session's reference-kernel time, which it records for later validations
    assert doc["reference_ms"] == pytest.approx(side["session_reference_ms"]) == pytest.approx(df["reference_ms"][0])
    assert doc["k"] == len(df) and {s["part"] for s in doc["sources"]} == {"float", "int8", "other"}
    r.model.write(out)
    loaded = TransferredLatencyModel.read(out)
    assert loaded.content_hash() == r.model.content_hash() and loaded.reference_ms == doc["reference_ms"]
    arch = space.sample_many(1, seed=9)[0]
    preds = {d: load_latency(str(out), dtype=d).predict(arch, space).latency_ms for d in ("arch", "fp32", "int8")}
    assert all(v > 0 for v in preds.values()) and len(set(preds.values())) == 3
    # the same arguments on this host: reused, nothing measured, the same model
    _no_measuring(monkeypatch)
    again = HERE.adapt_here(str(space_path), 6, "here", out, sources=[str(table)], rounds=2, progress=False)
    assert again.reused and again.model.content_hash() == r.model.content_hash()
    # a refit by hand from the kept measurements records the host they were measured on, and hashes the same
    refit = adapt(str(space_path), str(r.measured_csv), "here", sources=[str(table)])
    assert refit.doc["host_fingerprint"] == fingerprint(1) and refit.content_hash() == r.model.content_hash()


def test_kept_measurements_are_reused_only_for_the_same_arguments_on_this_host(tmp_path):
    csv = tmp_path / "m.measured.csv"
    csv.write_text("arch,latency_ms\n")
    record = {k: 1 for k in HERE.RECORD_KEYS}
    here = fingerprint(1)
    assert HERE._reusable(csv, record, here) == (False, f"{csv} was measured with other {', '.join(HERE.RECORD_KEYS)}")
    (tmp_path / "m.measured.yaml").write_text(yaml.safe_dump({"arguments": record, "host_fingerprint": here}))
    assert HERE._reusable(csv, record, here) == (True, "")
    assert HERE._reusable(csv, {**record, "seed": 2}, here) == (False, f"{csv} was measured with other seed")
    reason = HERE._reusable(csv, record, {**here, "cpu": "Another CPU"})[1]
    assert reason.startswith(f"{csv} was measured on another host (cpu ")
    assert HERE._reusable(tmp_path / "none.measured.csv", record, here) == (False, "")


@pytest.mark.slow
def test_readme_main_job_adapt_then_search_on_a_tiny_space(tiny, tmp_path, capsys, user_tables_dir, monkeypatch):
    """The README main job's first steps, on a tiny space: adapt the table to this host by name (measurements
    kept and reused), then search and validate on the adapted device; no host warning for it."""
    space_path, table = tiny
    adapt_cmd = ("lut", "adapt", "--space", space_path, "--from", table, "--measure-here", 5, "--device-name",
                 "tiny-here", "--rounds", 2)
    rc, out, err = run_cli(capsys, *adapt_cmd)
    assert rc == 0, err
    assert "measured 5 networks on this host in" in out and "--device tiny-here" in out
    assert (user_tables_dir / "tiny-here.transfer.yaml").is_file()
    assert (user_tables_dir / "tiny-here.measured.csv").is_file()
    rc, out, err = run_cli(capsys, "lut", "list")
    row = next(line.split() for line in out.splitlines() if line.startswith("tiny-here "))
    assert row[1] == "transferred" and row[6] == "yes"
    rc, out, err = run_cli(capsys, "search", "--space", space_path, "--device", "tiny-here", "--trials", 3,
                           "--objectives", "proxy,latency", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--quiet")
    assert rc == 0, err
    assert "3 trials" in out and "warning" not in err
    rc, out, err = run_cli(capsys, "lut", "validate", "--device", "tiny-here", "--space", space_path, "--n", 3,
                           "--rounds", 2, "-o", tmp_path / "val.csv")
    assert rc == 0, err and "table sum" in out
    _no_measuring(monkeypatch)  # the main job run again: the measurements are reused
    rc, out, err = run_cli(capsys, *adapt_cmd)
    assert rc == 0, err and "reused 5 networks" in out


def test_measure_here_flags(capsys, tmp_path):
    base = ("lut", "adapt", "--space", "mobilenet-c10", "--from", "x86-2vcpu", "--device-name", "x")
    rc, _, err = run_cli(capsys, *base)
    assert rc == 2 and "give exactly one of --measured CSV or --measure-here N" in err
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        run_cli(capsys, *base, "--measured", tmp_path / "m.csv", "--measure-here", 5)
    assert "not allowed with argument" in capsys.readouterr().err
    rc, _, err = run_cli(capsys, *base, "--measure-here", 5, "--host", "my pi")
    assert rc == 2 and err.startswith("nas: error: --host: --host names the host --measured")
    rc, _, err = run_cli(capsys, *base, "--measure-here", 2)
    assert rc == 2 and err.startswith("nas: error: --measure-here: must be at least 3")


def test_a_model_measured_elsewhere_records_the_named_host_or_unknown_never_this_one(tmp_path):
    from helpers_latency import FBNET, TRANSFER_SPACE, write_measured

    space = load_space(TRANSFER_SPACE)
    csv = write_measured(tmp_path / "m.csv", space, space.sample_many(8, seed=3))
    named = adapt(TRANSFER_SPACE, str(csv), "pi", sources=FBNET, host="Raspberry Pi 5, onnxruntime 1.20").doc
    assert named["host"] == "Raspberry Pi 5, onnxruntime 1.20" and "host_fingerprint" not in named
    assert adapt(TRANSFER_SPACE, str(csv), "pi", sources=FBNET).doc["host"] == "unknown"
    assert "reference_ms" not in named  # plain milliseconds of that device


def test_the_tiny_table_is_this_hosts(tiny):
    assert read_table(tiny[1]).meta["host_fingerprint"] == fingerprint(1)


def test_readme_main_job_adapts_to_this_host_first_then_searches_on_the_adapted_device():
    from conftest import ROOT

    text = (ROOT / "README.md").read_text()
    job = text[text.index("```bash", text.index("## Set-up on a fresh machine")):].split("```")[1]
    adapt_at = job.index("nas lut adapt --space mobilenet-c10 --from x86-2vcpu --measure-here 20 "
                         "--device-name x86-2vcpu-here")
    assert adapt_at < job.index("nas search --space mobilenet-c10 --device x86-2vcpu-here ")
    assert "--study mobilenet-c10-x86-2vcpu-here" in job
