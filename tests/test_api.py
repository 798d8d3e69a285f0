"""The public Python API: a lazy facade with the documented names, and the README's Python session runs."""
import re
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("torch", "optuna", "onnxruntime", "numpy", "pandas")


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_import_nas_and_planning_load_nothing_heavy():
    out = _run("import sys, nas\n"
               "space = nas.load_space('nas-bench-macro')\n"
               "cost = nas.count(space.parse('01202110'), space)\n"
               "print(cost.params, sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    assert out == "236202 []" or out.endswith(" []"), out


def test_cli_parser_loads_nothing_heavy():
    out = _run("import sys\nfrom nas.cli import build_parser\nbuild_parser()\n"
               "print(sorted(m for m in %r if m in sys.modules))" % (HEAVY,))
    assert out == "[]"


@pytest.mark.parametrize("name", ["load_space", "list_spaces", "plan", "count", "build_model", "NasError",
                                  "Architecture", "SearchSpace", "LayerSpec"])
def test_facade_names(name):
    import nas

    assert callable(getattr(nas, name))


def test_api_entry_points_exist():
    import nas

    assert callable(nas.latency.load) and callable(nas.proxies.Scorer)
    assert callable(nas.search.create_search) and callable(nas.deploy.export)
    with pytest.raises(AttributeError):
        nas.no_such_name  # noqa: B018


def _readme_session() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_python_session_searches_and_exports(tmp_path, monkeypatch):
    """The README's Python session, as written, in a fresh folder."""
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    code = _readme_session()
    assert len([l for l in code.splitlines() if l.strip() and not l.lstrip().startswith("#")]) <= 12
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    front = namespace["front"]
    assert isinstance(front, pd.DataFrame) and len(front) >= 1
    summary = pd.read_csv(tmp_path / "exported" / "summary.csv")
    assert (summary["status"] == "ok").all() and len(summary) >= 1
    assert (tmp_path / "exported" / summary["name"][0] / "model.quant.onnx").is_file()
