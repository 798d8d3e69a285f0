"""nas.space.csv: an architecture CSV that cannot be read is one error naming it."""
import pytest

from conftest import run_cli
from nas.errors import NasError
from nas.space.csv import read_arch_csv


def test_item16_a_folder_given_as_the_architecture_csv_is_an_error_naming_it(tmp_path, capsys):
    with pytest.raises(NasError, match=f"^{tmp_path}: is a folder, not a CSV file"):
        read_arch_csv(str(tmp_path))
    rc, _, err = run_cli(capsys, "arch", "info", "--space", "nas-bench-macro", "--archs", tmp_path,
                         "-o", tmp_path / "o.csv")
    assert rc == 2 and err == f"nas: error: {tmp_path}: is a folder, not a CSV file (fix: give the CSV file)\n"
