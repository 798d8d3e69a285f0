"""nas.errors and nas.fileio: one-line errors, suggestions, atomic writes, YAML read with a precise error."""
from nas.errors import NasError, did_you_mean
from nas.fileio import atomic_write_text


def test_error_is_one_line_with_where_argument_and_fix():
    assert str(NasError("bad\nvalue", where="f.yaml: key", fix="use 3")) == "f.yaml: key: bad value (fix: use 3)"
    assert str(NasError("must be >= 1", argument="trials")) == "argument 'trials': must be >= 1"


def test_did_you_mean():
    assert did_you_mean("raspi5", ["raspi4", "pixel3"]) == " (did you mean 'raspi4'?)"
    assert did_you_mean("zzz", ["raspi4"]) == ""


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "t.csv"
    atomic_write_text(path, "a\n")
    atomic_write_text(path, "b\n")
    assert path.read_text() == "b\n" and sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]


def test_read_yaml_names_file_line_and_column(tmp_path):
    import pytest

    from nas.errors import NasError, first_line
    from nas.fileio import read_yaml

    good = tmp_path / "a.yaml"
    good.write_text("x: [1, 2]\n")
    assert read_yaml(good) == {"x": [1, 2]}
    bad = tmp_path / "b.yaml"
    bad.write_text("x: [1, 2\ny: 3\n")
    with pytest.raises(NasError, match=r"b\.yaml: malformed YAML at line \d+, column \d+"):
        read_yaml(bad)
    with pytest.raises(NasError, match=r"c\.yaml: file not found \(fix: look elsewhere\)"):
        read_yaml(tmp_path / "c.yaml", not_found_fix="look elsewhere")
    assert first_line(ValueError("one\ntwo")) == "one" and first_line(KeyError()) == "KeyError"
