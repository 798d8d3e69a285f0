"""This host's fingerprint and whether a table or model was measured on a host like it
(nas.latency.measure.host): parsing /proc/cpuinfo on x86 and ARM, the comparison, and the one-line warning that
loading a table of another host gives (library: HostMismatchWarning; CLI: one `nas: warning:` line)."""
from __future__ import annotations

import shutil
import warnings

import pytest
import yaml

from conftest import run_cli
from nas.latency.load import load as load_latency
from nas.latency.measure import host as H
from nas.latency.table import SHIPPED_DIR, read_table
from nas.space import load_space

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse4_2 avx f16c avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 rdrand
processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
"""
PI = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
GRAVITON = """processor\t: 0
Features\t: fp asimd evtstrm aes sha2 crc32 asimddp sha512 sve i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""


def test_cpuinfo_gives_the_cpu_model_and_the_isa_features_onnxruntime_dispatches_on():
    assert H.parse_cpuinfo(X86) == ("AMD EPYC 9R14 96-Core Processor",
                                    ("avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512bw", "avx512f",
                                     "avx512vl", "f16c", "fma"))
    assert H.parse_cpuinfo(PI) == ("Raspberry Pi 4 Model B Rev 1.4", ("asimd",))
    cpu, isa = H.parse_cpuinfo(GRAVITON)
    assert cpu == "ARM implementer 0x41 part 0xd40" and isa == ("asimd", "asimddp", "bf16", "i8mm", "sve")
    assert H.parse_cpuinfo("processor : 0\n")[1] is None  # no flags line: ISA unknown, not empty


def test_this_hosts_fingerprint_has_every_field_and_describes_in_one_line():
    fp = H.fingerprint(2)
    assert set(fp) == {"cpu", "isa", "machine", "logical_cores", "threads", "onnxruntime", "os"}
    assert fp["threads"] == 2 and fp["logical_cores"] >= 1 and fp["onnxruntime"] not in ("", H.UNKNOWN)
    import onnxruntime

    assert fp["onnxruntime"] == onnxruntime.__version__
    line = H.describe(fp)
    assert "\n" not in line and fp["cpu"] in line and "2 thread(s)" in line
    yaml.safe_load(yaml.safe_dump(fp))  # plain data: it goes into YAML metadata


def _other(here: dict, **changes) -> dict:
    return {**here, **changes}


def test_what_counts_as_another_host():
    here = H.fingerprint(1)
    assert H.host_match({"host_fingerprint": here}, here) == ("yes", [])
    # kernel builds and core counts do not count
    assert H.host_match({"host_fingerprint": _other(here, os="Linux 0.0-other", logical_cores=64)}, here)[0] == "yes"
    for change, word in ((dict(cpu="AMD EPYC 9R14"), "cpu"), (dict(onnxruntime="1.0.0"), "onnxruntime"),
                         (dict(isa=sorted(set(here["isa"] or []) ^ {"avx512_vnni"})), "avx512_vnni"),
                         (dict(isa=None), "ISA features not recorded")):
        status, diff = H.host_match({"host_fingerprint": _other(here, **change)}, here)
        assert status == "no" and word in "; ".join(diff)
    many = _other(here, threads=here["logical_cores"] + 1)
    assert H.host_match({"host_fingerprint": many}, here)[0] == "no"
    # a board of another machine architecture is another device, not a wrong guess about this one
    assert H.host_match({"host_fingerprint": _other(here, machine="aarch64-other")}, here)[0] == "n/a"


def test_shipped_and_published_tables_and_models_measured_elsewhere():
    x86 = read_table("x86-2vcpu").meta
    assert H.host_match(x86)[0] == "unknown"  # this project's host class, no fingerprint
    assert H.host_warning(x86, device="x86-2vcpu", spaces=x86["spaces"]) is not None
    for device in ("raspi4", "bitfusion", "note10", "gold6226"):  # published tables of other devices
        meta = read_table(device).meta
        assert H.host_match(meta)[0] == "n/a" and H.host_warning(meta, device=device, spaces=meta["spaces"]) is None
    named = {"kind": "transferred", "host": "my Raspberry Pi 5"}
    assert H.host_match(named)[0] == "n/a" and H.host_warning(named, device="pi", spaces=["s"]) is None
    unknown = {"kind": "transferred", "host": "unknown", "reference_ms": 0.1}
    assert H.host_match(unknown)[0] == "unknown" and H.host_warning(unknown, device="d", spaces=["s"]) is None


def _table_of_another_host(tmp_path):
    """A copy of x86-2vcpu whose fingerprint is this host's with another CPU model."""
    shutil.copy(SHIPPED_DIR / "x86-2vcpu.csv", tmp_path / "other.csv")
    meta = yaml.safe_load((SHIPPED_DIR / "x86-2vcpu.meta.yaml").read_text())
    meta["host_fingerprint"] = {**H.fingerprint(1), "cpu": "Some Other CPU @ 2.0GHz"}
    (tmp_path / "other.meta.yaml").write_text(yaml.safe_dump(meta))
    return tmp_path / "other.csv"


def test_loading_a_table_of_another_host_warns_naming_the_command_and_published_ones_never_do(tmp_path):
    path = _table_of_another_host(tmp_path)
    with pytest.warns(H.HostMismatchWarning, match="was measured on another host \\(cpu Some Other CPU") as rec:
        load_latency(str(path))
    text = str(rec[0].message)
    assert "nas lut adapt --space SPACE --from x86-2vcpu --measure-here 20 --device-name x86-2vcpu-here" in text
    meta = yaml.safe_load((tmp_path / "other.meta.yaml").read_text())
    meta["host_fingerprint"] = H.fingerprint(1)  # the same table, fingerprinted on this host: silent
    (tmp_path / "other.meta.yaml").write_text(yaml.safe_dump(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error", H.HostMismatchWarning)
        load_latency(str(path))
        load_latency("raspi4")
        load_latency("bitfusion", dtype="arch")


def test_cli_prints_the_warning_once_with_the_space_filled_in(tmp_path, capsys):
    path = _table_of_another_host(tmp_path)
    space = load_space("mobilenet-c10")
    archs = tmp_path / "a.csv"
    archs.write_text("arch\n" + "\n".join(space.format(a) for a in space.sample_many(3, seed=1)) + "\n")
    rc, out, err = run_cli(capsys, "lut", "predict", "--table", path, "--space", "mobilenet-c10", "--archs", archs,
                           "-o", tmp_path / "p.csv")
    assert rc == 0, err
    lines = [line for line in err.splitlines() if line.startswith("nas: warning:")]
    assert len(lines) == 1 and "--space mobilenet-c10 --from x86-2vcpu --measure-here 20" in lines[0]
    fbnet = load_space("fbnet-c100")
    rc, out, err = run_cli(capsys, "lut", "predict", "--device", "raspi4", "--space", "fbnet-c100",
                           fbnet.format(fbnet.sample_many(1, seed=0)[0]))
    assert rc == 0 and "warning" not in err, err


def test_list_and_show_say_whether_a_table_is_this_hosts(tmp_path, capsys, user_tables_dir):
    path = _table_of_another_host(tmp_path)
    for name in ("other.csv", "other.meta.yaml"):
        shutil.copy(tmp_path / name, user_tables_dir / name.replace("other", "mine"))
    meta = yaml.safe_load((user_tables_dir / "mine.meta.yaml").read_text())
    meta["host_fingerprint"] = H.fingerprint(1)
    (user_tables_dir / "mine.meta.yaml").write_text(yaml.safe_dump(meta))
    shutil.copy(path, user_tables_dir / "theirs.csv")
    shutil.copy(tmp_path / "other.meta.yaml", user_tables_dir / "theirs.meta.yaml")
    rc, out, _ = run_cli(capsys, "lut", "list")
    assert rc == 0 and "this host" in out.splitlines()[0]
    column = {line.split()[0]: line.split()[6] for line in out.splitlines()[1:] if len(line.split()) > 7}
    assert column["mine"] == "yes" and column["theirs"] == "no" and column["x86-2vcpu"] == "unknown"
    assert column["raspi4"] == "n/a" and column["bitfusion"] == "n/a"
    rc, out, _ = run_cli(capsys, "lut", "show", "theirs", "--rows", "1")
    assert rc == 0 and "host: Some Other CPU @ 2.0GHz" in out and "this host: no (cpu Some Other CPU" in out


def test_nas_export_prices_through_the_same_warning():
    """`nas export` prices its models with nas.latency.load: the warning reaches it (the CLI prints it once)."""
    from nas.deploy.pipeline import predicted_latency
    from nas.deploy.targets import target_from_arch

    space = load_space("mobilenet-c10")
    text = space.format(space.sample_many(1, seed=2)[0])
    target = target_from_arch("mobilenet-c10", text, ["x86-2vcpu"])
    with pytest.warns(H.HostMismatchWarning, match="'x86-2vcpu' records no host fingerprint"):
        out = predicted_latency(target, space.parse(text), space, "int8")
    assert out["x86-2vcpu"]["quantized_ms"] > 0 and out["x86-2vcpu"]["fp32_ms"] > 0
