"""Reports of a study (`nas pareto`): CSV, PNG and HTML from the storage alone."""
from nas.search import search

from conftest import run_cli
from test_search_common import fast_cfg


def test_pareto_unknown_study(tmp_path, capsys):
    cfg = fast_cfg(tmp_path, trials=2)
    search(cfg)
    rc, _, err = run_cli(capsys, "pareto", "--storage", cfg.storage, "--study", "other", "-o", tmp_path / "o")
    assert rc == 2 and "no study 'other'" in err and "studies: t" in err
