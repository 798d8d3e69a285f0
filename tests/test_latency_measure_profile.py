"""Profiling layer tables on this machine (nas.latency.measure.profile), kept small: two architectures, few
repeats, one profiling run per session shared with the validate tests. Non-positive values are tested on a
deterministic stand-in for the timing (no ONNX, no clock)."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from nas.errors import NasError
from nas.latency import read_table
from nas.latency.load import load as load_latency
from nas.latency.measure import profile as P
from nas.latency.measure.profile import ProfileConfig, ProfileResult, profile_space
from nas.latency.measure.timing import REFERENCE, Paired
from nas.latency.signatures import arch_layers
from nas.space import load_space
from helpers_latency import FAST, PROFILE_SPACE, profiled_once

SPACE = PROFILE_SPACE


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    result, csv, archs = profiled_once(tmp_path_factory)
    return result.path, csv, archs


@pytest.mark.slow
def test_profile_writes_a_valid_table_with_protocol(profiled, tmp_path_factory):
    path, _, archs = profiled
    s = load_space(SPACE)
    table = read_table(path)
    need = set(arch_layers(archs, s, "fp32")) | set(arch_layers(archs, s, "int8"))
    result = profiled_once(tmp_path_factory)[0]
    assert {sig for _, sig in table.entries} == need - {d.signature for d in result.dropped}
    assert all(e.repeats == 3 and e.latency_ms >= 0 for e in table.entries.values())
    assert all(e.latency_ms > 0 for e in table.entries.values())  # never a 0 (bug 3)
    assert sum(e.latency_ms > 0 for e in table.entries.values()) > 0.9 * len(need)
    assert isinstance(result, ProfileResult) and str(result) == str(path) and result.seconds > 0
    assert (result.measured, result.already_present, result.rows) == (len(table.entries), 0, len(table.entries))
    assert result.measured + len(result.dropped) == len(need)
    meta = table.meta
    assert meta["runtime"].startswith("onnxruntime") and meta["threads"] == 1 and meta["spread"] == "iqr"
    assert "overhead" in meta["protocol"] and meta["dtype"] == "fp32,int8" and meta["spaces"] == [SPACE]
    assert meta["protocol_version"] == 2 and meta["reference_ms"] > 0 and meta["reference_kernel"] == REFERENCE.key
    notes = [e.note for (_, sig), e in table.entries.items() if sig[-2:] == (8, 8)]
    assert notes and all("Q/DQ boundary" in n for n in notes)
    dropped = {d.signature for d in result.dropped}  # rare: a layer no slower than the overhead, twice
    for dtype in ("fp32", "int8"):
        model = load_latency(str(path), dtype=dtype)
        for a in archs:
            pred = model.predict(a, s, allow_estimate=True)
            assert pred.latency_ms > 0 and pred.estimated == bool(set(arch_layers([a], s, dtype)) & dropped)


@pytest.mark.slow
def test_profile_resumes_measuring_only_what_is_missing(profiled, tmp_path, capsys):
    path, csv, _ = profiled
    lines = path.read_text().splitlines()
    work = tmp_path / "unit-cpu.csv"
    work.write_text("\n".join(lines[:-3]) + "\n")  # "interrupted": the last 3 rows are missing
    (tmp_path / "unit-cpu.meta.yaml").write_text(path.with_name("unit-cpu.meta.yaml").read_text())
    rc, out, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "unit-cpu", "--dtype",
                           "fp32,int8", "--archs", csv, "--out-dir", tmp_path, "--warmup", 1, "--repeats", 3,
                           "--rounds", 1)
    assert rc == 0, err
    assert "3 signature(s) measured" in out and f"rows in {work}" in out and f"table: {work}" in out
    new = work.read_text().splitlines()
    assert new[:-3] == lines[:-3] and len(new) == len(lines)


@pytest.mark.slow
def test_profile_refuses_to_mix_thread_settings(profiled, capsys):
    path, csv, _ = profiled
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "unit-cpu", "--archs", csv,
                         "--out-dir", path.parent, "--threads", 2)
    assert rc == 2 and "threads=1" in err and err.count("\n") == 1


@pytest.mark.slow
def test_profile_refuses_to_extend_an_unpaired_table(profiled, tmp_path, capsys):
    """A protocol-1 table (plain times, no reference_ms) cannot be extended with paired ratios."""
    path, csv, _ = profiled
    (tmp_path / "old.csv").write_text(path.read_text())
    meta = yaml.safe_load(path.with_name("unit-cpu.meta.yaml").read_text())
    del meta["reference_ms"], meta["protocol_version"]
    (tmp_path / "old.meta.yaml").write_text(yaml.safe_dump(meta))
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "old", "--archs", csv,
                         "--out-dir", tmp_path)
    assert rc == 2 and "protocol 1" in err and "another --device-name" in err and err.count("\n") == 1
    with pytest.raises(NasError) as exc:  # the same error from the API speaks of the argument
        profile_space(SPACE, "old", archs=str(csv), out_dir=tmp_path, progress=False)
    assert "another device_name" in exc.value.fix and "--" not in exc.value.fix


@pytest.mark.slow
def test_a_profiled_table_records_this_hosts_fingerprint_and_is_extended_only_here(profiled, tmp_path, capsys):
    """Issue 29.1: the table says which host it was measured on; rows of another host are never mixed in."""
    from nas.latency.measure.host import fingerprint, host_match

    path, csv, _ = profiled
    meta = read_table(path).meta
    assert meta["host_fingerprint"] == fingerprint(1) and host_match(meta)[0] == "yes"
    rc, out, _ = run_cli(capsys, "lut", "show", path, "--rows", "0")
    assert rc == 0 and f"host: {fingerprint(1)['cpu']}" in out and "this host: yes" in out
    (tmp_path / "t.csv").write_text(path.read_text())
    meta["host_fingerprint"] = {**meta["host_fingerprint"], "cpu": "Another CPU"}
    (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "t", "--archs", csv,
                         "--out-dir", tmp_path)
    assert rc == 2 and "profiled on another host (cpu Another CPU" in err and err.count("\n") == 1


def test_profile_needs_archs_or_all(capsys):
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "x")
    assert rc == 2 and "exactly one of --archs" in err


def test_bad_settings_name_api_arguments_and_the_cli_its_flags(capsys):
    for kw, argument in ((dict(threads=0), "threads"), (dict(repeats=0), "repeats"), (dict(stat="p99"), "stat")):
        with pytest.raises(NasError) as exc:
            ProfileConfig(**kw)
        assert exc.value.argument == argument and "--" not in str(exc.value)
    with pytest.raises(NasError) as exc:
        profile_space(SPACE, "x", dtypes=["fp16"], progress=False)
    assert exc.value.argument == "dtypes"
    for argv, flag in ((["--threads", 0], "--threads"), (["--dtype", "fp16"], "--dtype"),
                       (["--device-name", "../x"], "--device-name")):
        args = ["--device-name", "x", *argv] if argv[0] != "--device-name" else argv
        rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--all", *args)
        assert rc == 2 and err.startswith(f"nas: error: {flag}: "), err


def test_mixed_bits_are_profiled_with_dtype_arch(tmp_path):
    """w4a8 / w8a32 / w4a32 / w32a8 layers are deployed by nas.nn.quantize; only a8 layers pay the Q/DQ boundary."""
    from nas.layers import plan

    s = load_space(SPACE)
    arch = s.sample_many(1, seed=0)[0]
    csv = tmp_path / "a.csv"
    pd.DataFrame({"arch": [s.format(arch)]}).to_csv(csv, index=False)
    path = profile_space(SPACE, "x", dtypes=["arch"], archs=str(csv), config=FAST, out_dir=tmp_path,
                         progress=False).path
    table = read_table(path)
    bits = {sig[-2:] for _, sig in table.entries}
    assert len(bits) > 2  # the sampled architecture mixes bit-widths
    for (_, sig), e in table.entries.items():
        assert ("Q/DQ boundary" in e.note) == (sig[-1] < 32)
    assert load_latency(str(path), dtype="arch").predict(arch, s).latency_ms > 0
    assert len(table.entries) == len({l.signature for l in plan(arch, s)})


# --------------------------------------------------------------------------------------------------------
# non-positive values (bug 3), on a stand-in for the timing
# --------------------------------------------------------------------------------------------------------
class _FakeTimer:
    def __init__(self, spec=None):
        self.spec = spec


def _fake_timing(monkeypatch, ratio_of):
    """Replace ONNX building and timing in the profiler: every layer "runs" in ``ratio_of(spec, k)`` reference
    times on its k-th measurement (the per-call overhead in 0.01 of them). Returns the measured batches."""
    import nas.nn.build

    batches, seen = [], {}

    def measure_paired(timers, reference, *, warmup, repeats, rounds, first_round=True):
        layers = [t.spec for t in timers if t.spec is not None]
        batches.append([s.signature for s in layers])
        ratios = []
        for t in timers:
            if t.spec is None:
                ratios.append([0.01] * (repeats * rounds))
                continue
            k = seen[t.spec.signature] = seen.get(t.spec.signature, 0) + 1
            ratios.append([ratio_of(t.spec, k)] * (repeats * rounds))
        return Paired(ratios, [0.1] * (repeats * rounds * len(timers)))

    monkeypatch.setattr(nas.nn.build, "build_layer", lambda spec: spec)
    monkeypatch.setattr(P, "build_onnx", lambda module, *a, **k: module)
    monkeypatch.setattr(P, "Timer", lambda spec, *a, **k: _FakeTimer(spec))
    for name in ("reference_timer", "overhead_timer"):
        monkeypatch.setattr(P, name, lambda *a, **k: _FakeTimer())
    monkeypatch.setattr(P, "boundary_timer", lambda *a, **k: _FakeTimer())
    monkeypatch.setattr(P, "measure_paired", measure_paired)
    return batches


def test_a_value_non_positive_twice_is_dropped_not_written_as_0(tmp_path, monkeypatch, capsys):
    """Bug 3: the profiler clamped a negative overhead-corrected value to 0 ms and wrote it, unflagged. Now it
    measures it once more (after the other batches); what stays non-positive gets no row and is reported."""
    s = load_space(SPACE)
    arch = s.sample_many(1, seed=0)[0]
    csv = tmp_path / "a.csv"
    pd.DataFrame({"arch": [s.format(arch)]}).to_csv(csv, index=False)
    specs = list(arch_layers([arch], s, "fp32").values())
    twice, once = specs[1], specs[2]  # non-positive on both measurements / on the first only
    ratio = {twice.signature: (0.005, 0.004), once.signature: (0.01, 0.3)}

    def ratio_of(spec, k):
        return ratio.get(spec.signature, (0.2, 0.2))[min(k, 2) - 1]

    batches = _fake_timing(monkeypatch, ratio_of)
    cfg = ProfileConfig(threads=1, warmup=1, repeats=3, rounds=1, batch=8)
    result = profile_space(SPACE, "fake", dtypes=["fp32"], archs=str(csv), config=cfg, out_dir=tmp_path,
                           progress=False)
    assert [d.signature for d in result.dropped] == [twice.signature]
    assert (result.measured, result.already_present, result.rows) == (len(specs) - 1, 0, len(specs) - 1)
    # measured once more, in a batch after all the others
    assert sum(len(b) for b in batches[:-1]) == len(specs) and batches[-1] == [twice.signature, once.signature]
    table = read_table(result.path)  # what is on disk
    assert (0, twice.signature) not in table.entries
    assert all(e.latency_ms > 0 for e in table.entries.values())
    again = table.entries[0, once.signature]
    assert again.latency_ms == pytest.approx((0.3 - 0.01) * 0.1) and "re-measured" in again.note
    # missing like any unmeasured signature: an error naming it, or a flagged estimate
    model = load_latency(str(result.path), dtype="fp32")
    with pytest.raises(NasError, match=re.escape(twice.key)):
        model.predict(arch, s)
    pred = model.predict(arch, s, allow_estimate=True)
    assert pred.estimated and {r.key for r in pred.rows if r.estimated} == {twice.key}
    # the CLI prints the usual line and names what was dropped; a re-run measures it again
    rc, out, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "fake", "--archs", csv,
                           "--out-dir", tmp_path, "--warmup", 1, "--repeats", 3, "--rounds", 1)
    assert rc == 0, err
    assert "0 signature(s) measured in" in out and f"{len(specs) - 1} already in the table" in out
    warning = [line for line in err.splitlines() if "nas: warning:" in line]  # (the rest: the progress bar)
    assert len(warning) == 1 and "1 signature(s)" in warning[0] and warning[0].endswith(twice.key)
    assert batches[-2:] == [[twice.signature], [twice.signature]]


@pytest.mark.slow
def test_boundaries_are_profiled_signed_and_priced_between_layers(tmp_path):
    """--boundaries: one signed row per precision change of the architecture; predictions in that space add them
    (boundaries=False leaves them out), and a boundary the table lacks is an error naming it."""
    from nas.latency.predict import TableLatencyModel
    from nas.layers import boundaries, plan

    s = load_space(SPACE)
    arch = s.sample_many(1, seed=3)[0]
    csv = tmp_path / "a.csv"
    pd.DataFrame({"arch": [s.format(arch)]}).to_csv(csv, index=False)
    path = profile_space(SPACE, "b", dtypes=["arch"], archs=str(csv), config=FAST, out_dir=tmp_path,
                         progress=False, boundaries=True).path
    table = read_table(path)
    assert table.boundary_spaces() == [SPACE]
    wanted = {b.signature for b in boundaries(plan(arch, s))}
    assert {sig for _, sig in table.entries if sig[0] == "boundary"} == wanted
    with_b = TableLatencyModel(table).predict(arch, s)
    without = TableLatencyModel(table, boundaries=False).predict(arch, s)
    rows = [r for r in with_b.rows if r.key.startswith("boundary-")]
    assert len(rows) == len(boundaries(plan(arch, s))) > 0
    assert with_b.latency_ms == pytest.approx(without.latency_ms + sum(r.ms for r in rows))
    gone = next(k for k in table.entries if k[1][0] == "boundary")
    del table.entries[gone]
    with pytest.raises(NasError, match=r"boundary-.*--boundaries"):
        TableLatencyModel(table).predict(arch, s)
    with pytest.raises(NasError, match="dtypes"):
        profile_space(SPACE, "b", dtypes=["fp32"], archs=str(csv), config=FAST, out_dir=tmp_path,
                      progress=False, boundaries=True)
