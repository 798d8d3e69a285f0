"""Reports of a study (`nas pareto`): CSV, PNG and HTML from the storage alone."""
import html

from nas.search import search

from conftest import run_cli
from helpers_search import fast_cfg


def test_pareto_unknown_study(tmp_path, capsys):
    cfg = fast_cfg(tmp_path, trials=2)
    search(cfg)
    rc, _, err = run_cli(capsys, "pareto", "--storage", cfg.storage, "--study", "other", "--out-dir", tmp_path / "o")
    assert rc == 2 and "no study 'other'" in err and "studies: t" in err


def test_hypervolume_history_by_hand():
    import pandas as pd
    import pytest

    from nas.search.report import hypervolume_history

    df = pd.DataFrame({"trial": [0, 1, 2, 3], "p": [1.0, 2.0, 0.5, 3.0], "l": [2.0, 3.0, 1.0, 1.0],
                       "feasible": [True, True, True, False]})
    # maximise p, minimise l; reference from the feasible trials, 5 % of the span out: p 0.425, l 3.1
    # trial 0: 0.575 x 1.1; trial 1 adds [1, 2] x [3, 3.1]; trial 2 adds [0.425, 0.5] x [1, 2]; 3 is infeasible
    expected = [0.6325, 0.7325, 0.8075, 0.8075]
    assert hypervolume_history(df, ["p", "l"], ["maximize", "minimize"]) == pytest.approx(expected)


def test_report_errors_name_the_study_and_leave_matplotlib_alone(tmp_path, capsys, monkeypatch):
    import matplotlib
    import pytest

    from nas.errors import NasError
    from nas.search.report import write_report

    with pytest.raises(NasError, match="no architecture met the budget"):
        search(fast_cfg(tmp_path, trials=3, latency_budget_ms=0.5))
    storage = fast_cfg(tmp_path).storage
    with pytest.raises(NasError, match="study 't' has no feasible trial: the Pareto front is empty") as err:
        write_report(storage, "t", tmp_path / "o")
    assert err.value.argument == "study" and "--" not in str(err.value)
    rc, _, err_text = run_cli(capsys, "pareto", "--storage", storage, "--study", "t", "--out-dir", tmp_path / "o")
    assert rc == 2 and err_text.startswith("nas: error: --study: study 't' has no feasible trial")
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("the report switched matplotlib's backend"))
    search(fast_cfg(tmp_path, study="ok", trials=3))
    paths = write_report(storage, "ok", tmp_path / "ok")
    assert all(p.stat().st_size > 0 for p in paths.values())


def test_bit_columns_show_the_bit_mix_where_the_space_chooses_bits():
    import pandas as pd

    from nas.layers import bit_mix, plan
    from nas.search.report import add_bit_columns
    from nas.space import load_space

    space = load_space("mobilenet-c10")
    archs = space.sample_many(4, seed=2)
    df = pd.DataFrame({"arch": [space.format(a) for a in archs]})
    add_bit_columns(df, space)
    mix = bit_mix(plan(archs[0], space))
    assert df["mean_wbits"][0] == mix["mean_wbits"] and 4 <= df["mean_wbits"].min() < 32
    assert df["bit_mix"][0] == " ".join(f"{k}:{v}" for k, v in mix["convs"].items())
    fb = load_space("fbnet-c100")
    plain = pd.DataFrame({"arch": [fb.format(a) for a in fb.sample_many(3, seed=0)]})
    add_bit_columns(plain, fb)
    assert "bit_mix" not in plain  # every layer float: nothing to show


# --------------------------------------------------------------------------------------------------------
# a report people can read: labelled axes, the export command, a real browser, optuna-dashboard
# --------------------------------------------------------------------------------------------------------
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory):
    """A study of the mission space (bits and activations vary) with a budget, made by `nas search`, reported."""
    from nas.search import SearchConfig
    from nas.search.report import write_report

    tmp = tmp_path_factory.mktemp("report")
    cfg = SearchConfig(space="mobilenet-c10", devices=["x86-2vcpu"], trials=14, objectives=["proxy", "latency", "size"],
                       proxy="params", data="noise", latency_budget_ms=6.0, storage=f"sqlite:///{tmp}/s.db",
                       study="m")
    search(cfg)
    return cfg, write_report(cfg.storage, "m", tmp / "out")


def test_html_report_labels_axes_budgets_and_gives_each_front_member_its_export_command(mixed_study):
    import pandas as pd

    cfg, paths = mixed_study
    html = paths["pareto.html"].read_text()
    front = pd.read_csv(paths["pareto.csv"])
    for label in ("estimated accuracy score (params, higher is better)",
                  "latency on x86-2vcpu, ms (each layer at its bits; lower is better)",
                  "model size at its bit-widths, MB (lower is better)", "budget 6", "mean weight bits"):
        assert label in html
    for t in front["trial"]:
        assert f"nas export --storage {cfg.storage} --study m --trial {t} --out-dir export-m-{t}" in html
    import re

    assert not re.search(r"<script[^>]*\bsrc=", html) and "plotly" in html  # plotly.js embedded: opens offline
    assert html.count('<tr') == len(front) + 1  # the front's table: header + one row per member


def _chromium() -> str | None:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if found is None and os.environ.get("NAS_REQUIRE_BROWSER"):
        pytest.fail("NAS_REQUIRE_BROWSER is set (CI) but no Chromium is installed: apt-get install chromium")
    if found is None:
        pytest.skip("no Chromium on this machine (CI installs it)")
    return found


def test_pareto_html_renders_in_headless_chromium_with_every_point(mixed_study, tmp_path):
    import matplotlib.image
    import numpy as np
    import pandas as pd

    browser = _chromium()
    _, paths = mixed_study
    url = paths["pareto.html"].resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=8000"]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1300,900", f"--screenshot={shot}", url], check=True,
                   capture_output=True, timeout=120)
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05 and (pixels < 0.5).mean() > 0.005  # not a blank page: axes, text, points drawn
    dom = subprocess.run([browser, *flags, "--dump-dom", url], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    trials, front = pd.read_csv(paths["trials.csv"]), pd.read_csv(paths["pareto.csv"])
    # plotly drew every trial and every front ring in each of the two panels (latency, size)
    assert dom.count('class="point plotly-customdata"') >= 2 * (len(trials) + len(front))
    for arch in front["arch"]:
        assert arch in dom


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_serves_the_study_with_its_objective_values(mixed_study):
    import json
    import urllib.request

    cfg, _ = mixed_study
    exe = Path(sys.executable).with_name("optuna-dashboard")
    assert exe.exists(), "optuna-dashboard is a test dependency (pip install -e '.[test]')"
    port = _free_port()
    proc = subprocess.Popen([str(exe), cfg.storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # it starts in ~2 s idle; a loaded 2-core machine took over 30
        while True:
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=2))["study_summaries"]
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"optuna-dashboard did not answer within 120 s (exit code {proc.poll()})")
                time.sleep(0.2)
        study = next(s for s in studies if s["study_name"] == "m")
        detail = json.load(urllib.request.urlopen(f"{base}/api/studies/{study['study_id']}", timeout=10))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert detail["objective_names"] == ["proxy.params", "latency_ms.x86-2vcpu", "size_mb"]
    from helpers_search import stored_trials

    stored = {t.number: t.values for t in stored_trials(cfg.storage, "m") if t.values}
    served = {t["number"]: t["values"] for t in detail["trials"] if t.get("values")}
    assert served.keys() == stored.keys() and len(served) == 14
    for n, values in stored.items():
        assert served[n] == pytest.approx(values)


def test_legend_of_a_numeric_colour_scale_shows_marker_shapes_in_grey():
    """Coloured by mean bits, the legend's marker entries are neutral grey (the colour bar reads colour),
    not the colormap's first colour."""
    import numpy as np
    import pandas as pd
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from nas.search.report import Styling, _scatter_feasible

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [3.0, 2.0, 1.0]})
    style = Styling("mean weight bits", np.array([4.0, 6.0, 8.0]), True, np.array(["relu"] * 3), False)
    ax = Figure().subplots()
    mappable = _scatter_feasible(ax, df, np.ones(3, bool), "x", "y", style, "s", " (relu)")
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["feasible (relu)"] and mappable is not None
    assert tuple(handles[0].get_facecolor()[0]) == to_rgba("dimgrey")
    assert len(mappable.get_offsets()) == 3


def test_item8_suggested_commands_are_quoted_and_run_as_pasted(tmp_path, capsys, monkeypatch):
    """Item 8: the printed "next:" line and pareto.html's export commands put the storage URL and the study name
    in unquoted: a path with spaces broke them, a study name with ';' ran a second command when pasted."""
    import re
    import shlex

    monkeypatch.chdir(tmp_path)
    storage, study = f"journal:{tmp_path}/my studies/s.journal", "a b;touch PWNED"
    rc, out, err = run_cli(capsys, "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", "params",
                           "--data", "noise", "--trials", 4, "--storage", storage, "--study", study, "--quiet")
    assert rc == 0, err
    nxt = next(line for line in out.splitlines() if line.startswith("next: "))
    argv = shlex.split(nxt.removeprefix("next: "))
    assert argv[:5] == ["nas", "pareto", "--storage", storage, "--study"] and argv[5] == study
    rc, out, err = run_cli(capsys, *argv[1:])  # the pasted command, as a shell splits it
    assert rc == 0, err
    assert not (tmp_path / "PWNED").exists()
    page = (tmp_path / f"pareto-{study}" / "pareto.html").read_text()
    unicode = re.compile(r"\\u([0-9a-fA-F]{4})")  # plotly's JSON writes / as \u002f
    commands = [unicode.sub(lambda m: chr(int(m[1], 16)), html.unescape(c))
                for c in re.findall(r"nas export [^<\"]*", page)]
    assert len(commands) > 4  # every trial's hover (JSON) and each front member's table row (HTML)
    for command in commands:
        argv = shlex.split(command)
        assert argv[2:6] == ["--storage", storage, "--study", study] and argv[6] == "--trial"


@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="NAS_TEST_POSTGRES_URL not set (CI starts a server)")
def test_item8_password_never_reaches_the_report_or_the_printed_lines(tmp_path, capsys):
    """Item 8: the storage password was in the "study ... in URL" and "next:" lines and in every hover and table
    row of pareto.html. (The CI server trusts loopback, so any password opens it.)"""
    import uuid

    from sqlalchemy.engine import make_url

    url = make_url(os.environ["NAS_TEST_POSTGRES_URL"]).set(password="s3cret-item8")
    url = url.render_as_string(hide_password=False)
    study = f"item8-{uuid.uuid4().hex[:8]}"
    rc, out, err = run_cli(capsys, "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", "params",
                           "--data", "noise", "--trials", 4, "--storage", url, "--study", study, "--quiet")
    assert rc == 0, err
    assert "s3cret-item8" not in out + err and ":***@" in out
    rc, out, err = run_cli(capsys, "pareto", "--storage", url, "--study", study, "--out-dir", tmp_path / "p")
    assert rc == 0, err
    for name in ("pareto.html", "pareto.csv", "trials.csv"):
        assert "s3cret-item8" not in (tmp_path / "p" / name).read_text(), name
    assert url.replace(":s3cret-item8@", "@") in html.unescape((tmp_path / "p" / "pareto.html").read_text())


def test_item3_pareto_reloads_the_space_the_study_searched(tmp_path, capsys, monkeypatch):
    """Item 3: a study recorded its space by name only, so `nas pareto` in a new process failed with "unknown
    search space" for a user's YAML (and used the shipped space for one that keeps a shipped name). The study
    stores the space's YAML text and its hash; pareto reads the space from there, even with the file gone."""
    from nas.paths import SHIPPED_SPACES_DIR
    from nas.space import registry

    text = (SHIPPED_SPACES_DIR / "fbnet-c100.yaml").read_text().replace("name: fbnet-c100", "name: my-fbnet", 1)
    (tmp_path / "my.yaml").write_text(text)
    storage = f"sqlite:///{tmp_path}/s.db"
    rc, out, err = run_cli(capsys, "search", "--space", tmp_path / "my.yaml", "--device", "raspi4", "--proxy",
                           "params", "--data", "noise", "--trials", 4, "--storage", storage, "--quiet")
    assert rc == 0, err
    assert "study 'my-fbnet-raspi4'" in out  # named after the space, not its path
    (tmp_path / "my.yaml").unlink()
    monkeypatch.setattr(registry, "_LOADED_PATHS", {})  # a new process: the name is not known
    rc, out, err = run_cli(capsys, "pareto", "--storage", storage, "--study", "my-fbnet-raspi4", "--out-dir", tmp_path / "p")
    assert rc == 0, err
    assert (tmp_path / "p" / "pareto.html").is_file()
