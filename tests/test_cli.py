"""`nas spaces` and `nas arch`: the CLI on real inputs; bad input is one line and exit 2, never a traceback."""
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, TEST_DATA, run_cli
from nas.space import load_space


def test_spaces_list_and_show(capsys):
    rc, out, _ = run_cli(capsys, "spaces", "list")
    assert rc == 0 and "nas-bench-macro" in out and "10^3.8" in out
    rc, out, _ = run_cli(capsys, "spaces", "show", "ofa-mbv3")
    assert rc == 0 and "stage 5: width 192 depth {2,3,4} stride 2" in out


def test_arch_sample_is_deterministic(capsys):
    _, a, _ = run_cli(capsys, "arch", "sample", "--space", "fbnet-c100", "--n", "3", "--seed", "4")
    _, b, _ = run_cli(capsys, "arch", "sample", "--space", "fbnet-c100", "--n", "3", "--seed", "4")
    assert a == b and len(a.splitlines()) == 3


def test_arch_info_single(capsys):
    rc, out, _ = run_cli(capsys, "arch", "info", "--space", "nas-bench-macro", "01202110")
    assert rc == 0
    assert "stage0.block0  skip" in out and "1x1 projection" in out
    assert "total: 1,234,282 params, 48,437,760 MACs" in out


def test_arch_info_csv_keeps_rows_and_order(tmp_path, capsys):
    src = pd.read_csv(TEST_DATA / "nas_bench_macro_dev.csv", dtype={"arch": str}).head(25)
    src = src.iloc[::-1]
    inp, out = tmp_path / "in.csv", tmp_path / "out.csv"
    src[["arch"]].to_csv(inp, index=False)
    rc, _, err = run_cli(capsys, "arch", "info", "--space", "nas-bench-macro", "--archs", inp, "-o", out)
    assert rc == 0, err
    res = pd.read_csv(out, dtype={"arch": str, "native": str})
    assert list(res.columns[:4]) == ["arch", "canonical", "native", "params"]
    assert list(res["arch"]) == list(src["arch"])
    assert list(res["params"]) == list(src["params"]) and list(res["macs"]) == list(src["flops"])


def test_arch_list_names_the_baselines_with_their_cost(capsys):
    rc, out, _ = run_cli(capsys, "arch", "list")
    assert rc == 0
    assert "mobilenetv2-1.0    mobilenet-c10          2,236,682  88.0 M  8.95 MB" in out
    assert "mobilenetv3-small  mobilenetv3-small-c10  1,528,106  17.5 M" in out
    assert out.count("CIFAR layout") == 6


def test_arch_info_takes_a_baseline_name_and_implies_its_space(capsys):
    rc, out, _ = run_cli(capsys, "arch", "info", "--arch", "mobilenetv3-large")
    assert rc == 0 and out.startswith("space mobilenetv3-large-c10: ")
    assert "total: 4,214,842 params, 66,459,008 MACs" in out
    rc, same, _ = run_cli(capsys, "arch", "info", "--space", "mobilenetv3-large-c10", "mobilenetv3-large")
    assert rc == 0 and same == out


@pytest.mark.parametrize("argv, message", [
    (["arch", "sample", "--space", "fbnet"], "--space: unknown search space 'fbnet'"),
    (["arch", "info", "--space", "nas-bench-macro", "0120211x"], "architecture '0120211x'"),
    (["arch", "info", "--space", "mobilenet-c10", "ir_k3"], "stage segment"),
    (["spaces", "show", "missing.yaml"], "missing.yaml: file not found"),
    (["arch", "info", "--space", "mobilenet-c10", "--arch", "mobilenetv3-small"],
     "baseline 'mobilenetv3-small' is an architecture of space 'mobilenetv3-small-c10', not of 'mobilenet-c10'"),
    (["arch", "info", "--arch", "mobilenetv2-0.6"], "unknown baseline 'mobilenetv2-0.6' (did you mean 'mobilenetv2-0.5'?)"),
    (["arch", "info", "--arch", "ir_k3"], "--space: a space is needed to read this architecture"),
    (["arch", "info", "mobilenetv2-0.5", "--arch", "mobilenetv2-0.5"], "give the architecture once"),
    (["arch", "info", "--archs", "x.csv", "-o", "o.csv"], "--space: --archs needs --space"),
    (["export", "--space", "mobilenet-c10", "--out-dir", "OUT"], "--space needs --arch"),
    (["export", "--space", "mobilenet-c10", "--arch", "mobilenetv2-0.5", "--out-dir", "OUT"],
     "--arch: not an architecture of space 'mobilenet-c10': baseline 'mobilenetv2-0.5' is an architecture of space "
     "'mobilenetv2-0.5-c10'"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_csv_names_the_file_and_row(tmp_path, capsys):
    inp = tmp_path / "in.csv"
    inp.write_text("arch\n01202110\n0120x110\n")
    rc, _, err = run_cli(capsys, "arch", "info", "--space", "nas-bench-macro", "--archs", inp, "-o", tmp_path / "o.csv")
    assert rc == 2 and f"{inp} row 2" in err
    inp.write_text("architecture\n01202110\n")
    rc, _, err = run_cli(capsys, "arch", "info", "--space", "nas-bench-macro", "--archs", inp, "-o", tmp_path / "o.csv")
    assert rc == 2 and "no column 'arch'" in err


def test_console_script_end_to_end(tmp_path):
    """The installed `nas` entry point on a malformed user space: one line, exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ninput: {resolution: [32\n")
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "spaces", "show", str(bad)], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "malformed YAML" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv, start", [
    (["search", "--space", "fbnet-c100", "--device", "raspi5", "--trials", "2", "--quiet"], "nas: error: --device: unknown device 'raspi5'"),
    (["export", "--space", "fbnet-c100", "--arch", "x", "--device", "raspi5", "--out-dir", "OUT"],
     "nas: error: --arch:"),
    (["lut", "predict", "--device", "raspi5", "--space", "fbnet-c100", "x"], "nas: error: --device: unknown device 'raspi5'"),
    (["search", "--space", "fbnet-c100", "--device", "raspi4", "--trials", "0", "--quiet"], "nas: error: --trials: must be >= 1"),
])
def test_api_errors_read_with_the_commands_flags(tmp_path, capsys, argv, start):
    """Library errors name API arguments (name_or_path, trials, arch_text); each command shows its own flag."""
    argv = [str(tmp_path / a) if a == "OUT" else a for a in argv]
    if argv[0] == "search":
        argv += ["--storage", f"journal:///{tmp_path}/s.journal"]
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2 and err.startswith(start), err


def test_apq_on_bitfusion_prices_latency_and_energy_from_apq_specs(tmp_path, capsys, monkeypatch):
    """APQ's own JSON specs in, latency and energy out; a search with energy as objective and budget."""
    import json

    import pandas as pd

    from nas.space import load_space

    space = load_space("apq")
    specs = tmp_path / "specs.csv"
    pd.DataFrame({"arch": [space.to_native(a) for a in space.sample_many(3, seed=4)]}).to_csv(specs, index=False)
    out = tmp_path / "pred.csv"
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "bitfusion", "--space", "apq", "--archs", str(specs),
                         "-o", str(out))
    assert rc == 0, err
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["arch", "latency_ms", "energy_mJ"]
    assert (pred.latency_ms > 0).all() and (pred.energy_mJ > 0).all()
    assert json.loads(pred.arch[0])["ks"]  # the rows keep the user's spec
    monkeypatch.chdir(tmp_path)
    rc, out_text, err = run_cli(capsys, "search", "--space", "apq", "--device", "bitfusion", "--trials", "4",
                                "--objectives", "proxy,latency,energy", "--energy-budget", "40", "--proxy", "params",
                                "--data", "noise")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "pareto", "--study", "apq-bitfusion", "--out-dir", str(tmp_path / "front"))
    assert rc == 0, err
    front = pd.read_csv(tmp_path / "front" / "pareto.csv")
    assert "energy_mJ.bitfusion" in front.columns and (front["energy_mJ.bitfusion"] <= 40).all()


def test_mission_space_searches_on_the_shipped_x86_table_without_flags(tmp_path, capsys, monkeypatch):
    """mobilenet-c10 (activation x bit-width per block) on x86-2vcpu: every layer priced at its own bits, precision
    boundaries included, with no --latency-dtype and no --allow-estimate."""
    monkeypatch.chdir(tmp_path)
    rc, _, err = run_cli(capsys, "search", "--space", "mobilenet-c10", "--device", "x86-2vcpu", "--trials", "5",
                         "--objectives", "proxy,latency,size")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "pareto", "--study", "mobilenet-c10-x86-2vcpu", "--out-dir", str(tmp_path / "front"))
    assert rc == 0, err
    front = pd.read_csv(tmp_path / "front" / "pareto.csv")
    assert {"latency_ms.x86-2vcpu", "size_mb", "mean_wbits", "bit_mix"} <= set(front.columns)


@pytest.mark.parametrize("argv", [
    ["arch", "info", "--space", "nas-bench-macro", "--archs", "IN", "-o", "IN"],
    ["score", "--space", "nas-bench-macro", "--archs", "IN", "--proxy", "synflow", "--data", "noise", "-o", "IN"],
    ["lut", "predict", "--device", "raspi4", "--space", "fbnet-c100", "--archs", "IN", "-o", "IN"],
    ["lut", "validate", "--device", "raspi4", "--space", "fbnet-c100", "--archs", "IN", "-o", "IN"],
    ["lut", "adapt", "--space", "fbnet-c100", "--measured", "IN", "--device-name", "x", "-o", "IN"],
])
def test_item16_an_output_that_is_the_input_csv_is_refused_before_any_work(tmp_path, capsys, argv):
    """Every command that reads an architecture CSV and writes -o refuses -o equal to it (also spelled another
    way): the input is kept."""
    src = tmp_path / "in.csv"
    text = "arch,latency_ms\n" + "".join(f"{a},{1 + i}\n" for i, a in
                                         enumerate(load_space("fbnet-c100").sample_many(3, seed=0)
                                                   if "fbnet-c100" in argv else ["01202110"]))
    src.write_text(text)
    argv = [str(src) if a == "IN" else a for a in argv]
    argv[-1] = str(tmp_path / "." / "in.csv")
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2 and err.startswith("nas: error: --output: ") and "overwrite the input" in err, err
    assert src.read_text() == text
