"""Reports of a study: pareto.csv, trials.csv, pareto.png, hypervolume.png and pareto.html."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import NasError
from nas.search.front import front, hypervolume, load_trials, reference_point


def add_bit_columns(df, space) -> None:
    """Where the space chooses bit-widths: ``mean_wbits`` (over the weights), ``mean_abits`` (over the MACs) and
    ``bit_mix`` (convs per bit-width label) of each trial, so the front's bit mix can be read."""
    from nas.layers import bit_mix, plan

    mixes = [bit_mix(plan(space.parse(a), space)) for a in df["arch"]]
    if len({label for m in mixes for label in m["convs"]}) > 1:  # more than one precision anywhere
        df["mean_wbits"] = [m["mean_wbits"] for m in mixes]
        df["mean_abits"] = [m["mean_abits"] for m in mixes]
        df["bit_mix"] = [" ".join(f"{k}:{v}" for k, v in m["convs"].items()) for m in mixes]


def _colour_key(df, space) -> tuple[str, Any]:
    """Colour by mean weight bit-width where bit-width is a choice, else by the dominant activation."""
    archs = [space.parse(a) for a in df["arch"]]
    if "mean_wbits" in df and df["mean_wbits"].nunique() > 1:
        return "mean weight bits (over weights)", df["mean_wbits"].to_numpy()
    acts = []
    for a in archs:
        names = [b.act for b in a.blocks if b.act]
        acts.append(max(set(names), key=names.count) if names else "none")
    return "activation", np.array(acts)


def write_report(storage, study_name: str, out_dir: str | Path) -> dict[str, Path]:
    """pareto.csv, trials.csv, pareto.png, hypervolume.png and pareto.html for one study (``storage``: a URL or
    an Optuna storage)."""
    from nas.space import load_space

    _, cfg, df = load_trials(storage, study_name)
    if df.empty:
        raise NasError(f"study '{study_name}' has no finished trials yet", argument="study_name",
                       fix="run `nas search` first (re-running the same command resumes it)")
    space = load_space(cfg["space"])
    add_bit_columns(df, space)
    best, cols, dirs = front(df, cfg)
    if best.empty:
        raise NasError(f"study '{study_name}' has no feasible trial: the Pareto front is empty",
                       argument="study_name", fix="raise the budget in a new study")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("pareto.csv", "trials.csv", "pareto.png", "hypervolume.png",
                                           "pareto.html")}
    best.to_csv(paths["pareto.csv"], index=False)
    df.to_csv(paths["trials.csv"], index=False)
    axes = plot_axes(cols, cfg, df)
    label, colour = _colour_key(df, space)
    title = f"{study_name}: {len(df)} trials, {int(df['feasible'].sum())} feasible, front {len(best)}"
    plot_front(df, best, axes, label, colour, paths["pareto.png"], title=title,
               latency_budget_ms=cfg.get("latency_budget_ms"))
    order = df.sort_values("trial")
    plot_hypervolume(order["trial"], hypervolume_history(order, cols, dirs), cols, paths["hypervolume.png"])
    _write_html(df, best, *axes, label, colour, paths["pareto.html"], study_name)
    return paths


def plot_axes(cols: list[str], cfg: dict, df) -> tuple[str, str]:
    """(x, y) columns of the front plot: the first latency objective (else MACs) against the proxy."""
    x_col = next((c for c in cols if c.startswith("latency_ms.")), "macs")
    y_col = f"proxy.{cfg['proxy']}"
    return x_col, (y_col if y_col in df.columns else cols[0])


def plot_front(df, best, axes: tuple[str, str], label: str, colour, path: Path, *, title: str,
               latency_budget_ms: float | None = None) -> None:
    """pareto.png: every trial (infeasible grey, feasible coloured by ``colour``), the front in red, the
    latency budget dashed. Drawn on a bare Figure: no pyplot, no backend switch, no global state."""
    from matplotlib.figure import Figure

    x_col, y_col = axes
    feasible = df["feasible"].to_numpy()
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    ax.scatter(df.loc[~feasible, x_col], df.loc[~feasible, y_col], c="lightgrey", s=12, label="infeasible")
    if np.issubdtype(colour.dtype, np.number):
        sc = ax.scatter(df.loc[feasible, x_col], df.loc[feasible, y_col], c=colour[feasible], cmap="viridis", s=14,
                        label="feasible")
        fig.colorbar(sc, ax=ax, label=label)
    else:
        for value in sorted(set(colour[feasible])):
            sel = feasible & (colour == value)
            ax.scatter(df.loc[sel, x_col], df.loc[sel, y_col], s=14, label=f"{label}: {value}")
    ax.plot(best[x_col], best[y_col], "r-o", ms=5, lw=1.2, label="Pareto front", zorder=5)
    if latency_budget_ms and x_col.startswith("latency_ms."):
        ax.axvline(latency_budget_ms, color="k", ls="--", lw=0.8, label="latency budget")
    ax.set_xlabel(x_col.replace("latency_ms.", "latency (ms) on "))
    ax.set_ylabel(y_col)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def hypervolume_history(trials, cols: list[str], dirs: list[str]) -> list[float]:
    """Hypervolume of the feasible front after each of ``trials`` (in trial order); the reference point is
    the worst feasible value seen, pushed 5 % out (fixed for the whole history)."""
    vals = trials[cols].to_numpy(dtype=float)
    ok = trials["feasible"].to_numpy() & np.isfinite(vals).all(axis=1)
    ref = reference_point(vals[ok], dirs)
    return [hypervolume(vals[: i + 1][ok[: i + 1]], dirs, ref) if ok[: i + 1].any() else 0.0
            for i in range(len(trials))]


def plot_hypervolume(trial_numbers, history: list[float], cols: list[str], path: Path) -> None:
    """hypervolume.png: the feasible front's hypervolume against the trial number."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(trial_numbers, history)
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume (" + " x ".join(cols) + ")")
    ax.set_title("hypervolume of the feasible front")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _write_html(df, best, x_col, y_col, label, colour, path: Path, title: str) -> None:
    """Interactive plot (plotly, JavaScript embedded so it opens offline); hover shows the architecture."""
    import plotly.graph_objects as go

    feasible = df["feasible"].to_numpy()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df.loc[~feasible, x_col], y=df.loc[~feasible, y_col], mode="markers",
                             name="infeasible", marker=dict(color="lightgrey", size=6),
                             text=df.loc[~feasible, "arch"], hovertemplate="%{text}<extra>infeasible</extra>"))
    numeric = np.issubdtype(colour.dtype, np.number)
    fig.add_trace(go.Scatter(x=df.loc[feasible, x_col], y=df.loc[feasible, y_col], mode="markers", name="feasible",
                             marker=dict(color=colour[feasible] if numeric else None, size=7, showscale=numeric,
                                         colorbar=dict(title=label) if numeric else None),
                             text=[f"trial {t}: {a}" for t, a in zip(df.loc[feasible, "trial"], df.loc[feasible, "arch"])],
                             hovertemplate="%{text}<br>x=%{x:.3f} y=%{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=best[x_col], y=best[y_col], mode="lines+markers", name="Pareto front",
                             line=dict(color="red"), text=[f"trial {t}: {a}" for t, a in zip(best["trial"], best["arch"])],
                             hovertemplate="%{text}<extra>front</extra>"))
    fig.update_layout(title=title, xaxis_title=x_col, yaxis_title=y_col, template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
