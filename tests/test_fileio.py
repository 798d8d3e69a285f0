"""Atomic writes: a fresh synced temp file renamed over the target (reliability 10)."""
import os
import sys
import threading

import pytest

from nas.fileio import atomic_write, atomic_write_text


def test_item10_a_planted_symlink_at_the_old_temp_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "table.csv.tmp").symlink_to(victim)  # the fixed temp name writers used before
    atomic_write_text(tmp_path / "table.csv", "new")
    assert victim.read_text() == "keep me"
    assert (tmp_path / "table.csv").read_text() == "new"


def test_item10_concurrent_writers_never_share_a_temp_file(tmp_path):
    """Each writer has its own temp file, so the result is one writer's whole text, never an interleaving."""
    target, errors = tmp_path / "t.csv", []
    texts = [str(i) * 200_000 for i in range(8)]

    def write(text):
        try:
            atomic_write_text(target, text)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert target.read_text() in texts
    assert not [p for p in tmp_path.iterdir() if p.name != "t.csv"]  # no temp file left behind


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_the_written_file_keeps_the_old_mode_or_is_world_readable(tmp_path):
    new = atomic_write_text(tmp_path / "a.yaml", "x")
    assert new.stat().st_mode & 0o777 == 0o644
    new.chmod(0o600)
    atomic_write_text(new, "y")
    assert new.stat().st_mode & 0o777 == 0o600


def test_item12_an_output_is_checked_in_the_api_arguments_terms(tmp_path, monkeypatch):
    """The library names its own argument and a fix in API terms; nothing is created by the check."""
    from nas.errors import NasError
    from nas.fileio import check_output_file, check_table_output

    for engine in ("pyarrow", "fastparquet"):
        monkeypatch.setitem(sys.modules, engine, None)
    with pytest.raises(NasError, match=r"^argument 'out_csv': writing Parquet needs pyarrow or fastparquet.*out_csv=\S*r\.csv\)$"):
        check_table_output(tmp_path / "r.parquet", argument="out_csv")
    src = tmp_path / "in.csv"
    src.write_text("arch\n")
    with pytest.raises(NasError, match=f"is a file this call reads.*another file than archs={src}, e.g. output="):
        check_output_file(tmp_path / "." / "in.csv", reads={"archs": src})
    assert check_output_file(tmp_path / "a" / "b" / "c.csv") == tmp_path / "a" / "b" / "c.csv"
    assert not (tmp_path / "a").exists() and sorted(os.listdir(tmp_path)) == ["in.csv"]
