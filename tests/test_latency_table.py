"""Latency tables on disk (nas.latency.table): the contract every shipped table keeps, schema checks of bad
files (one precise line, exit 2), finding tables by name, writing them back."""
from __future__ import annotations

import math

import pytest
import yaml

from conftest import run_cli
from nas.errors import NasError
from nas.latency import read_table
from nas.latency.load import load as load_latency
from nas.latency.table import META_SUFFIX, SHIPPED_DIR, list_devices
from nas.space import load_space
from helpers_latency import EXPECTED, copy_table, edit_csv

SHIPPED = sorted(p.name[: -len(META_SUFFIX)] for p in SHIPPED_DIR.glob("*" + META_SUFFIX))


# --------------------------------------------------------------------------------------------------------
# shipped tables: the contract
# --------------------------------------------------------------------------------------------------------
def test_every_expected_device_is_shipped():
    assert set(EXPECTED) <= set(SHIPPED)


def test_every_file_in_latency_tables_is_checked_by_the_contract():
    """Each file in latency_tables/ is the CSV or the metadata of a table the contract test below loads."""
    checked = {f"{d}{ext}" for d in SHIPPED for ext in (".csv", META_SUFFIX)}
    notices = {"LICENSES.md", "LICENSE-Apache-2.0.txt", "README.md"}  # licences and the folder's reference (not tables)
    files = {p.name for p in SHIPPED_DIR.iterdir() if not p.name.startswith(".")} - notices
    assert files - checked == set(), "files in latency_tables/ that test_shipped_table_loads_and_covers_its_spaces " \
                                     "does not load (a table without metadata, or another kind of file)"
    assert checked - files == set(), "a table whose .csv is missing"


@pytest.mark.parametrize("device", SHIPPED)
def test_shipped_table_loads_and_covers_its_spaces(device):
    table = read_table(device)
    assert table.meta["schema_version"] == 1 and table.meta["device"] == device
    for key in ("source", "commit", "license"):
        assert table.meta["provenance"][key]
    layers = [e for (_, sig), e in table.entries.items() if sig[0] != "boundary"]  # boundary rows are signed
    assert all(e.latency_ms >= 0 and math.isfinite(e.latency_ms) for e in layers)
    assert all(math.isfinite(e.latency_ms) for e in table.entries.values())
    if "reference_ms" in table.meta:  # written by `nas lut profile`: never a 0 (published tables may have them)
        assert all(e.latency_ms > 0 for e in layers)
    # a table covers its spaces at the precision(s) it was measured at (boundary rows included where it has them)
    dtypes = [d for d in str(table.meta.get("dtype", "")).split(",") if d in ("arch", "fp32", "int8")] or [None]
    for dtype in dtypes:
        model = load_latency(device, dtype=dtype)
        for space in table.meta["spaces"]:
            model.check_covers(load_space(space))
    assert sorted(table.meta["spaces"]) == EXPECTED.get(device, sorted(table.meta["spaces"]))
    # written text is what is on disk: the content hash identifies the file
    assert table.to_csv_text() == table.csv_path.read_text()


def test_write_round_trips_and_leaves_no_temporary_files(tmp_path):
    table = read_table("proxyless-mobile")  # with its 0-ms 'zero op' and folded pool rows
    path = table.write(tmp_path / "copy.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.csv", "copy.meta.yaml"]
    again = read_table(path)
    assert again.entries == table.entries and again.meta["rows"] == len(table.entries)
    assert any(e.latency_ms == 0 for e in again.entries.values())


# --------------------------------------------------------------------------------------------------------
# bad input: one precise line, exit 2
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, expect", [
    ("nan", "latency_ms: nan is not a finite number"),
    ("negative", "latency_ms: negative value -1.5"),
    ("missing_column", "missing column(s) spread_ms"),
    ("schema", "schema_version 99 is not supported"),
    ("duplicate", "duplicate signature conv-i32x32x3-o16-k3-s1-relu-w32a32"),
    ("no_meta", "metadata file missing"),
])
def test_bad_tables_fail_with_one_precise_line(tmp_path, capsys, case, expect):
    path = copy_table(tmp_path)
    if case == "nan":
        edit_csv(path, lambda df: df.assign(latency_ms=["nan"] + list(df["latency_ms"][1:])))
    elif case == "negative":
        edit_csv(path, lambda df: df.assign(latency_ms=["-1.5"] + list(df["latency_ms"][1:])))
    elif case == "missing_column":
        edit_csv(path, lambda df: df.drop(columns=["spread_ms"]))
    elif case == "schema":
        meta = yaml.safe_load((tmp_path / "t.meta.yaml").read_text())
        meta["schema_version"] = 99
        (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    elif case == "duplicate":
        text = path.read_text().splitlines()
        path.write_text("\n".join(text + [text[1]]) + "\n")
    elif case == "no_meta":
        (tmp_path / "t.meta.yaml").unlink()
    rc, out, err = run_cli(capsys, "lut", "predict", "--device", path, "--space", "fbnet-c100",
                           "k3_e1|" * 21 + "k3_e1")
    assert rc == 2 and expect in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_device_and_uncovered_space(capsys):
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "raspi5", "--space", "fbnet-c100", "k3_e1|" * 22)
    assert rc == 2 and "unknown device 'raspi5'" in err and "raspi4" in err and err.count("\n") == 1
    assert err.startswith("nas: error: --device: unknown device 'raspi5'")  # the API argument, as its flag
    rc, _, err = run_cli(capsys, "lut", "show", "note10", "--space", "fbnet-c100")
    assert rc == 0
    arch = load_space("ofa-mbv3").sample_many(1, seed=0)[0]
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "raspi4", "--space", "ofa-mbv3",
                         load_space("ofa-mbv3").format(arch))
    assert rc == 2 and "has no entry for" in err and err.count("\n") == 1


def test_cli_list_and_show(capsys):
    rc, out, _ = run_cli(capsys, "lut", "list")
    assert rc == 0 and all(d in out for d in EXPECTED)
    rc, out, _ = run_cli(capsys, "lut", "show", "proxyless-mobile", "--space", "proxylessnas-mobile")
    assert rc == 0 and "coverage of proxylessnas-mobile (arch): complete" in out and "a7c9bcd" in out


def test_unknown_device_lists_available():
    with pytest.raises(NasError, match="use one of .*raspi4") as exc:
        load_latency("nope")
    assert "raspi4" in list_devices()
    assert exc.value.argument == "device" and exc.value.where is None and "--" not in str(exc.value)


def _profiled_copy(tmp_path):
    from nas.latency.table import read_table

    import shutil

    shutil.copy(SHIPPED_DIR / "x86-2vcpu.meta.yaml", tmp_path / "t.meta.yaml")
    lines = (SHIPPED_DIR / "x86-2vcpu.csv").read_text().splitlines()
    (tmp_path / "t.csv").write_text("\n".join(lines[:201]) + "\n")  # 200 rows
    return read_table(tmp_path / "t.csv")


def _new_rows(table, n: int, start: int):
    """n rows the table does not have: its first row's signature at new sizes."""
    from nas.latency.table import Entry

    (_, sig), = list(table.entries)[:1]
    return [(sig[:1] + (1000 + start + i,) + sig[2:], Entry(1.0 + i, 0.0, 1)) for i in range(n)]


def test_item10_two_writers_of_one_table_lose_no_rows(tmp_path):
    """Reliability 10: two profiles read the same table, each adds rows and saves: both sets survive."""
    from nas.latency.table import read_table

    a, b = _profiled_copy(tmp_path), read_table(tmp_path / "t.csv")
    b.meta["spaces"] = ["another-space"]
    for sig, e in _new_rows(a, 3, 0):
        a.add(sig, e)
    for sig, e in _new_rows(b, 4, 100):
        b.add(sig, e)
    a.write_merged(tmp_path / "t.csv")
    b.write_merged(tmp_path / "t.csv")
    final = read_table(tmp_path / "t.csv")
    assert len(final.entries) == 200 + 3 + 4
    assert "another-space" in final.meta["spaces"] and "mobilenet-c10" in final.meta["spaces"]


def test_item10_concurrent_processes_writing_one_table_lose_no_rows(tmp_path):
    import subprocess
    import sys

    from nas.latency.table import read_table

    _profiled_copy(tmp_path)
    code = """
import sys
from nas.latency.table import Entry, read_table
path, start = sys.argv[1], int(sys.argv[2])
t = read_table(path)
(_, sig), = list(t.entries)[:1]
for batch in range(10):
    for i in range(5):
        k = start + 5 * batch + i
        t.add(sig[:1] + (1000 + k,) + sig[2:], Entry(1.0 + k, 0.0, 1))
    t.write_merged(path)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "t.csv"), str(s)]) for s in (0, 500)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(read_table(tmp_path / "t.csv").entries) == 200 + 100
