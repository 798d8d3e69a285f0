"""nas.paths: shipped data found from a checkout and from a wheel; the user's own tables in one folder that a
flag and an environment variable move, looked up first, and shipped tables never written (package issue 1)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from nas.errors import NasError
from nas.latency import load
from nas.latency.table import list_devices, new_table_path, table_dirs
from nas.paths import SHIPPED_SPACES_DIR, SHIPPED_TABLES_DIR, user_tables_dir


def test_user_tables_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path / "mine"))
    assert user_tables_dir() == tmp_path / "mine" and table_dirs()[0] == tmp_path / "mine"
    monkeypatch.delenv("NAS_TABLES_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_tables_dir() == tmp_path / "xdg" / "nas" / "latency_tables"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path / "file"))
    with pytest.raises(NasError, match="not a folder"):
        user_tables_dir()


def test_shipped_data_is_found():
    assert (SHIPPED_SPACES_DIR / "mobilenet-c10.yaml").is_file()
    assert (SHIPPED_TABLES_DIR / "x86-2vcpu.csv").is_file()


@pytest.mark.parametrize("name", ["../escaped", "a/b", ".hidden", "", "x y"])
def test_a_device_name_cannot_leave_its_folder(name, tmp_path):
    with pytest.raises(NasError, match="invalid device name"):
        new_table_path(name, out_dir=tmp_path)


def test_shipped_tables_are_never_written_nor_hidden(tmp_path):
    with pytest.raises(NasError, match="shipped tables are never written"):
        new_table_path("raspi4", out_dir=SHIPPED_TABLES_DIR)
    with pytest.raises(NasError, match="shipped table") as err:
        new_table_path("raspi4")
    assert err.value.argument == "device_name"
    assert new_table_path("raspi4", out_dir=tmp_path) == tmp_path / "raspi4.csv"  # a folder the user names


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """120 fbnet-c100 networks 'measured' as the raspi4 table's sums plus a call overhead."""
    from nas.space import load_space

    space, model = load_space("fbnet-c100"), load("raspi4")
    archs = space.sample_many(120, seed=1)
    y = np.array([model.predict(a, space).latency_ms + 0.3 for a in archs])
    csv = tmp_path_factory.mktemp("m") / "m.csv"
    pd.DataFrame({"arch": [space.to_native(a) for a in archs], "latency_ms": y}).to_csv(csv, index=False)
    return csv


def test_a_written_table_lands_in_the_user_folder_and_is_found_first(measured, user_tables_dir, capsys):
    rc, out, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", measured,
                           "--device-name", "my-board")
    assert rc == 0, err
    assert (user_tables_dir / "my-board.csv").is_file() and "my-board" in list_devices()
    assert not (SHIPPED_TABLES_DIR / "my-board.csv").exists()
    rc, out, _ = run_cli(capsys, "lut", "list")
    assert "my-board" in out and "raspi4" in out
    rc, _, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", measured,
                         "--device-name", "my-board")
    assert rc == 2 and "exists already" in err and "--overwrite" in err
    rc, _, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", measured,
                         "--device-name", "my-board", "--overwrite")
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", measured,
                         "--device-name", "raspi4")
    assert rc == 2 and "--device-name" in err and "shipped table" in err


def test_the_tables_dir_flag_moves_the_folder(measured, tmp_path, capsys):
    mine = tmp_path / "elsewhere"
    rc, _, err = run_cli(capsys, "--tables-dir", mine, "lut", "adapt", "--space", "fbnet-c100", "--measured",
                         measured, "--device-name", "pi-here", "--from", "raspi4")
    assert rc == 0, err
    assert (mine / "pi-here.transfer.yaml").is_file()
    assert os.environ["NAS_TABLES_DIR"] == str(mine.resolve())


def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        run_cli(capsys, "--version")
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"nas {version('nas-edge')}"


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_carries_spaces_and_tables(tmp_path):
    """Build the wheel, install it (no network: --no-deps into a venv that sees this one's packages) and run the
    CLI from an empty folder: spaces, tables and a prediction, licence notices inside."""
    import shutil

    src, wheels = tmp_path / "src", tmp_path / "wheels"  # built from a copy: no build/ left in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                              "__pycache__", "experiments", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("nas_edge-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    where = tmp_path / "somewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["NAS_TABLES_DIR"] = str(tmp_path / "user")

    def nas(*argv):
        r = subprocess.run([str(venv / "bin" / "nas"), *argv], cwd=where, env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout

    loc = subprocess.run([str(py), "-c", "import nas.paths as p; print(p.SHIPPED_TABLES_DIR)"], cwd=where, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(loc).parts[-3:] == ("nas", "_data", "latency_tables") and str(ROOT) not in loc
    assert "mobilenet-c10" in nas("spaces", "list")
    tables = nas("lut", "list")
    assert "x86-2vcpu" in tables and "bitfusion" in tables
    assert "proxyless-mobile" not in tables  # its licence is unknown: it does not ship
    assert (Path(loc) / "LICENSES.md").is_file() and "Tianzhe Wang" in (Path(loc) / "LICENSES.md").read_text()
    arch = nas("arch", "sample", "--space", "fbnet-c100", "--n", "1").strip()
    assert "total:" in nas("lut", "predict", "--device", "raspi4", "--space", "fbnet-c100", arch)
    assert nas("--version").strip().startswith("nas ")


def test_the_wheel_lists_every_package():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nas").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_every_shipped_published_table_has_its_licence_notice():
    from nas.latency.table import read_table

    notices = (SHIPPED_TABLES_DIR / "LICENSES.md").read_text()
    for meta in SHIPPED_TABLES_DIR.glob("*.meta.yaml"):
        name = meta.name[: -len(".meta.yaml")]
        assert f"`{name}`" in notices, f"{name}: add its licence to latency_tables/LICENSES.md"
        assert read_table(name).meta["provenance"]["license"], name
