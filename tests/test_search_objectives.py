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


def test_energy_is_one_objective_and_one_budget_per_device():
    import pytest

    from nas.errors import NasError

    spec = Objectives(("proxy", "latency", "energy"), ("a", "b"), "naswot")
    assert spec.columns == ["proxy.naswot", "latency_ms.a", "latency_ms.b", "energy_mJ.a", "energy_mJ.b"]
    assert spec.directions == ["maximize"] + ["minimize"] * 4
    metrics = {"proxy.naswot": 1.0, "latency_ms.a": 2.0, "latency_ms.b": 3.0, "energy_mJ.a": 4.0, "energy_mJ.b": 9.0}
    assert spec.values(metrics) == [1.0, 2.0, 3.0, 4.0, 9.0]
    assert Budgets(energy_mj=5.0).constraints(metrics, ("a", "b")) == {"energy.a": -1.0, "energy.b": 4.0}
    del metrics["energy_mJ.b"]
    with pytest.raises(NasError, match="energy_mJ.b"):
        spec.values(metrics)
    with pytest.raises(NasError, match="no energy"):
        Budgets(energy_mj=5.0).constraints(metrics, ("a", "b"))


def test_energy_objective_on_a_table_without_energy_is_refused_up_front():
    import pytest

    from nas.errors import NasError
    from nas.latency import load
    from nas.proxies import Scorer
    from nas.search import create_search
    from nas.space import load_space

    space = load_space("fbnet-c100")
    with pytest.raises(NasError, match="'raspi4' gives no energy") as err:
        create_search(space, latency=[load("raspi4")], scorer=Scorer(space, ["params"], data="noise"),
                      objectives=("proxy", "energy"))
    assert err.value.argument == "objectives"


def test_item2_a_non_finite_metric_breaks_its_budget_never_passes_it():
    """Issue 28.2: NaN - budget is NaN, which Optuna's penalty (a sum of the positive values) counts as met."""
    b = Budgets(latency_ms=30, size_mb=1.0, energy_mj=2.0)
    for bad in (math.nan, math.inf, -math.inf):
        out = b.constraints({"latency_ms.d": bad, "size_mb": bad, "energy_mJ.d": bad}, ["d"])
        assert out == {"latency.d": math.inf, "size": math.inf, "energy.d": math.inf}
    assert b.constraints({"latency_ms.d": 10, "size_mb": 0.5, "energy_mJ.d": 1.0}, ["d"]) == \
        {"latency.d": -20, "size": -0.5, "energy.d": -1.0}
