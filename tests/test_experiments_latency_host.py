"""experiments/latency/latency_host_benchmark.py --rescore: more models scored on an earlier run's measurements,
put back on each model's own scale, with nothing timed again."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from experiments.latency import latency_host_benchmark as hb


def test_rescore_scores_another_model_on_the_earlier_runs_measurements(tmp_path, monkeypatch):
    from nas.space import load_space

    space = load_space(hb.SPACE)
    archs = space.sample_many(4, seed=3)
    pred = hb.predictions(hb.SOURCE, space, archs)
    session_ref = 0.05
    # an earlier run whose measurements are the shipped table's own predictions x 1.3 (on its scale)
    rows = [{"model": "shipped x86-2vcpu", "arch": space.format(a), "dtype": d, "measured_ms": 1.3 * pred[i, j],
             "predicted_ms": pred[i, j]} for i, a in enumerate(archs) for j, d in enumerate(hb.DTYPES)]
    pd.DataFrame(rows).to_csv(tmp_path / "latency_host_benchmark.csv", index=False)
    stamp = {"command": "the earlier run", "date": "2026-12-07 07:39 UTC", "host": "some CPU"}
    (tmp_path / "latency_host_benchmark.json").write_text(json.dumps(
        {"stamp": stamp, "session_reference_ms": session_ref,
         "summary": {"shipped x86-2vcpu": {**hb.scores(pred, 1.3 * pred), "measure_seconds": 0.0,
                                           "reused": False}}}))
    _, meas, ref, _, _, measured = hb.earlier_measurements(tmp_path, space)
    assert ref == session_ref and measured == stamp
    np.testing.assert_allclose(meas, 1.3 * pred * session_ref / hb.reference_of(hb.SOURCE))

    monkeypatch.setattr(sys, "argv", ["x", "--out-dir", str(tmp_path), "--rescore", "--also", hb.SOURCE])
    hb.main()
    out = json.loads((tmp_path / "latency_host_benchmark.json").read_text())
    # the same table again: its measurements on its own scale are 1.3 x its predictions, for every network
    assert out["summary"][hb.SOURCE]["arch"]["mape_pct"] == pytest.approx(100 * (1 / 1.3 - 1) * -1, rel=1e-6)
    assert set(out["summary"]) == {"shipped x86-2vcpu", hb.SOURCE} and out["measured"] == stamp
    assert "Scored on the measurements of `the earlier run`" in (tmp_path / "latency_host_benchmark.md").read_text()


def test_rescore_without_an_earlier_run_says_what_to_run(tmp_path):
    from nas.space import load_space

    with pytest.raises(SystemExit, match="run the benchmark once without --rescore"):
        hb.earlier_measurements(tmp_path, load_space(hb.SPACE))
