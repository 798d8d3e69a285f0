"""Objectives and budgets: columns and directions in Optuna's order, degenerate scores ranked last."""
import math

from nas.search.objectives import Budgets, Objectives


def test_columns_and_directions_follow_the_kinds_with_one_latency_per_device():
    spec = Objectives(("proxy", "latency", "size", "macs"), ("raspi4", "pixel3"), "naswot")
    assert spec.columns == ["proxy.naswot", "latency_ms.raspi4", "latency_ms.pixel3", "size_mb", "macs"]
    assert spec.directions == ["maximize", "minimize", "minimize", "minimize", "minimize"]
    assert Objectives.from_config({"objectives": ["latency", "proxy"], "devices": ["raspi4"], "proxy": "zen"}) == \
        Objectives(("latency", "proxy"), ("raspi4",), "zen")


def test_a_degenerate_score_is_the_worst_value_of_its_direction():
    spec = Objectives(("proxy", "latency"), ("raspi4",), "naswot")
    assert spec.values({"proxy.naswot": 3.5, "latency_ms.raspi4": 12.0}) == [3.5, 12.0]
    worst = spec.values({"proxy.naswot": math.nan, "latency_ms.raspi4": math.inf})
    assert worst == [-1e300, 1e300]


def test_budget_constraints_are_satisfied_at_or_below_zero():
    metrics = {"latency_ms.raspi4": 20.0, "latency_ms.pixel3": 35.0, "size_mb": 1.5}
    assert Budgets().constraints(metrics, ["raspi4"]) == {}
    assert Budgets(latency_ms=30.0, size_mb=2.0).constraints(metrics, ["raspi4", "pixel3"]) == \
        {"latency.raspi4": -10.0, "latency.pixel3": 5.0, "size": -0.5}
