"""What a search is asked to do: every option checked before anything is created, one-line CLI errors."""
import pytest

from conftest import run_cli


@pytest.mark.parametrize("argv, message", [
    (["--space", "nope", "--device", "raspi4"], "unknown search space 'nope'"),
    (["--space", "fbnet-c100", "--device", "raspi5"], "raspi5"),
    (["--space", "mobilenet-c10", "--device", "raspi4"], "mobilenet-c10"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
     "cannot open storage"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--objectives", "proxy,speed"], "--objectives"),
])
def test_bad_search_input_is_one_line(tmp_path, capsys, argv, message):
    rc, _, err = run_cli(capsys, "search", *argv, "--trials", "2", "--proxy", "params", "--quiet",
                         *([] if "--storage" in argv else ["--storage", f"journal:///{tmp_path}/x.journal"]))
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0
