"""Reports of a study: pareto.csv, trials.csv, pareto.png, hypervolume.png and pareto.html."""
from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.search.front import front, load_trials
from nas.search.hypervolume import REPORT_MARGIN, hypervolume, reference_point


def add_bit_columns(df, space, archs=None) -> None:
    """Where the space chooses bit-widths: ``mean_wbits`` (over the weights), ``mean_abits`` (over the MACs) and
    ``bit_mix`` (convs per bit-width label) of each trial, so the front's bit mix can be read."""
    from nas.layers import bit_mix, plan

    if not space.searches_bits:  # a float space: nothing to show, and no layer plan per trial to pay for
        return
    archs = archs if archs is not None else [space.parse(a) for a in df["arch"]]
    mixes = [bit_mix(plan(a, space)) for a in archs]
    if len({label for m in mixes for label in m["convs"]}) > 1:  # more than one precision anywhere
        df["mean_wbits"] = [m["mean_wbits"] for m in mixes]
        df["mean_abits"] = [m["mean_abits"] for m in mixes]
        df["bit_mix"] = [" ".join(f"{k}:{v}" for k, v in m["convs"].items()) for m in mixes]


@renamed_arguments(study_name="study")
def write_report(storage, study: str, out_dir: str | Path) -> dict[str, Path]:
    """pareto.csv, trials.csv, pareto.png, hypervolume.png and pareto.html for the study named ``study``
    (``storage``: a URL or an Optuna storage)."""
    from nas.search.record import stored_space

    loaded, cfg, df = load_trials(storage, study)
    if df.empty:
        raise NasError(f"study '{study}' has no finished trials yet", argument="study",
                       fix="run `nas search` first (re-running the same command resumes it)")
    space = stored_space(loaded.user_attrs, study)  # the space the study searched, not one of its name
    archs = [space.parse(a) for a in df["arch"]]  # parsed once for the bit columns and the styling
    add_bit_columns(df, space, archs)
    best, cols, dirs = front(df, cfg)
    if best.empty:
        raise NasError(f"study '{study}' has no feasible trial: the Pareto front is empty",
                       argument="study", fix="raise the budget in a new study")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("pareto.csv", "trials.csv", "pareto.png", "hypervolume.png",
                                           "pareto.html")}
    best.to_csv(paths["pareto.csv"], index=False)
    df.to_csv(paths["trials.csv"], index=False)
    style = Styling.of(df, archs)
    title = f"{study}: {len(df)} trials, {int(df['feasible'].sum())} feasible, front {len(best)}"
    plot_front(df, best, cfg, cols, style, paths["pareto.png"], title=title)
    order = df.sort_values("trial")
    plot_hypervolume(order["trial"], hypervolume_history(order, cols, dirs), cols, paths["hypervolume.png"])
    write_html(df, best, cfg, cols, style, paths["pareto.html"], title=title,
               export=export_command(storage, study))
    return paths


def export_command(storage, study_name: str):
    """``trial -> the nas export command for it``: every argument shell-quoted, the storage as given without its
    password (:func:`nas.search.storage.public_url`; an Optuna storage object: URL)."""
    from shlex import quote

    from nas.search.storage import public_url

    url = quote(public_url(storage, password=None)) if isinstance(storage, str) else "URL"

    def command(trial: int) -> str:
        return (f"nas export --storage {url} --study {quote(study_name)} --trial {trial} "
                f"--out-dir {quote(f'export-{study_name}-{trial}')}")

    return command


def dominant_activation(archs) -> np.ndarray:
    """Each architecture's most common block activation ('none' where blocks have none)."""
    acts = []
    for a in archs:
        names = [b.act for b in a.blocks if b.act]
        acts.append(max(sorted(set(names)), key=names.count) if names else "none")
    return np.array(acts)


def axis_label(col: str, cfg: dict) -> str:
    """What an objective column is, for an axis: unit, device and which way is better."""
    if col.startswith("proxy."):
        name = col.split(".", 1)[1]
        what = {"qnaswot": "qnaswot: naswot less the cost of its quantization noise"}.get(name, name)
        return f"estimated accuracy score ({what}, higher is better)"
    if col.startswith("latency_ms."):
        dtype = cfg.get("latency_dtype") or "arch"
        at = "each layer at its bits" if dtype == "arch" else f"every layer {dtype}"
        return f"latency on {col.split('.', 1)[1]}, ms ({at}; lower is better)"
    if col.startswith("energy_mJ."):
        return f"energy on {col.split('.', 1)[1]}, mJ (lower is better)"
    return {"size_mb": "model size at its bit-widths, MB (lower is better)",
            "macs": "multiply-accumulates (lower is better)"}.get(col, col)


def budget_of(col: str, cfg: dict) -> float | None:
    """The study's budget on an objective column (None: none)."""
    key = ("latency_budget_ms" if col.startswith("latency_ms.") else "energy_budget_mj"
           if col.startswith("energy_mJ.") else "size_budget_mb" if col == "size_mb" else None)
    return cfg.get(key) if key else None


@dataclass
class Styling:
    """How points are told apart: colour by mean weight bits where bits are a choice (else by activation),
    marker by activation where both vary."""

    colour_label: str
    colour: np.ndarray
    numeric: bool
    activation: np.ndarray
    marker_by_activation: bool

    @classmethod
    def of(cls, df, archs) -> "Styling":
        acts = dominant_activation(archs)
        if "mean_wbits" in df and df["mean_wbits"].nunique() > 1:
            return cls("mean weight bits (over the weights)", df["mean_wbits"].to_numpy(dtype=float), True, acts,
                       len(set(acts)) > 1)
        return cls("activation", acts, False, acts, False)


def panels(cols: list[str], df) -> list[tuple[str, str]]:
    """(x, y) of each panel: every objective that is not the proxy, against the proxy."""
    y = next((c for c in cols if c.startswith("proxy.")), cols[0])
    xs = [c for c in cols if c != y] or ["macs"]
    return [(x, y) for x in xs if x in df.columns]


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # matplotlib's, one per activation
SYMBOLS = ("circle", "square", "triangle-up", "diamond", "triangle-down", "cross", "x", "star")  # plotly's


def _scatter_feasible(ax, df, sel, x_col, y_col, style: Styling, marker: str, suffix: str):
    if style.numeric:
        # the legend shows the marker's shape in a neutral grey: the colour bar, not a legend entry, reads colour
        ax.scatter([], [], c="dimgrey", s=16, marker=marker, label=f"feasible{suffix}")
        return ax.scatter(df.loc[sel, x_col], df.loc[sel, y_col], c=style.colour[sel], cmap="viridis", s=16,
                          marker=marker, vmin=np.nanmin(style.colour), vmax=np.nanmax(style.colour),
                          label="_nolegend_")
    for value in sorted(set(style.colour[sel])):
        part = sel & (style.colour == value)
        ax.scatter(df.loc[part, x_col], df.loc[part, y_col], s=16, label=f"{style.colour_label}: {value}")
    return None


def plot_front(df, best, cfg: dict, cols: list[str], style: Styling, path: Path, *, title: str) -> None:
    """pareto.png: one panel per objective against the proxy: infeasible trials grey, feasible ones coloured by
    ``style``, the Pareto front ringed in red, the budgets dashed. Drawn on a bare Figure: no pyplot, no backend
    switch, no global state."""
    from matplotlib.figure import Figure

    pairs = panels(cols, df)
    fig = Figure(figsize=(6.5 * len(pairs), 5.2))
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    feasible = df["feasible"].to_numpy()
    acts = sorted(set(style.activation)) if style.marker_by_activation else [None]
    for ax, (x_col, y_col) in zip(axes, pairs):
        ax.scatter(df.loc[~feasible, x_col], df.loc[~feasible, y_col], c="lightgrey", s=12,
                   label="infeasible (over a budget)")
        mappable = None
        for k, act in enumerate(acts):
            sel = feasible & (style.activation == act) if act is not None else feasible
            mappable = _scatter_feasible(ax, df, sel, x_col, y_col, style, MARKERS[k % len(MARKERS)],
                                         f" ({act})" if act is not None else "") or mappable
        ordered = best.sort_values(x_col)
        ax.plot(ordered[x_col], ordered[y_col], "o", mfc="none", mec="red", ms=8, mew=1.4, label="Pareto front")
        if len(pairs) == 1:
            ax.plot(ordered[x_col], ordered[y_col], "r-", lw=1.0)
        budget = budget_of(x_col, cfg)
        if budget:
            ax.axvline(budget, color="k", ls="--", lw=0.9, label=f"budget {budget:g}")
        ax.set_xlabel(axis_label(x_col, cfg))
        ax.set_ylabel(textwrap.fill(axis_label(y_col, cfg), 60))  # a long score name would be cut off
        ax.legend(fontsize=7, loc="best")
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, label=style.colour_label)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def hypervolume_history(trials, cols: list[str], dirs: list[str]) -> list[float]:
    """Hypervolume of the feasible front after each of ``trials`` (in trial order); the reference point is
    the worst feasible value seen, pushed 5 % out (fixed for the whole history)."""
    from nas.search.front import pareto_mask

    vals = trials[cols].to_numpy(dtype=float)
    ok = trials["feasible"].to_numpy() & np.isfinite(vals).all(axis=1)
    ref = reference_point(vals[ok], dirs, margin=REPORT_MARGIN)
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    front = np.zeros((0, len(cols)))
    history, current = [], 0.0
    for i in range(len(trials)):  # incremental: only a trial that enters the front changes the hypervolume
        if ok[i] and not (front.size and np.any(np.all(front * signs <= vals[i] * signs, axis=1))):
            front = np.vstack([front, vals[i]])
            front = front[pareto_mask(front, dirs)]
            current = hypervolume(front, dirs, ref)
        history.append(current)
    return history


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


# --------------------------------------------------------------------------------------------------------
# pareto.html
# --------------------------------------------------------------------------------------------------------
def _hover(df, cols: list[str], style: Styling, export) -> list[list[str]]:
    """Per trial: [trial, architecture, metrics, export command] for the hover box."""
    out = []
    extra = [c for c in ("size_mb", "params", "bit_mix") if c in df.columns and c not in cols]
    for i, r in enumerate(df.to_dict("records")):  # column names keep their dots (namedtuples rename them)
        values = [f"{c} = {_fmt(r.get(c))}" for c in cols + extra]
        values.append(f"activation: {style.activation[i]}")
        out.append([str(r["trial"]), r["arch"], "<br>".join(values), export(int(r["trial"]))])
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _front_table(best, cols: list[str], style_best: Styling, export) -> str:
    import pandas as pd

    table = pd.DataFrame({"trial": best["trial"]})
    for c in cols + [c for c in ("size_mb", "mean_wbits", "mean_abits", "bit_mix") if c in best and c not in cols]:
        table[c] = best[c].map(_fmt)
    table["activation"] = style_best.activation
    table["architecture"] = best["arch"]
    table["export"] = [export(int(t)) for t in best["trial"]]
    return table.to_html(index=False, table_id="front", classes="front", escape=True, border=0)


def write_html(df, best, cfg: dict, cols: list[str], style: Styling, path: Path, *, title: str, export) -> None:
    """pareto.html: the panels of pareto.png, interactive (plotly, its JavaScript embedded: opens offline); the
    hover box shows a trial's architecture, metrics and its `nas export` command; the front's table below."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    pairs = panels(cols, df)
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    feasible = df["feasible"].to_numpy()
    hover = np.array(_hover(df, cols, style, export), dtype=object)
    template = "<b>trial %{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]}<br><i>%{customdata[3]}</i>"
    front_rows = df["trial"].isin(best["trial"]).to_numpy()
    acts = sorted(set(style.activation))
    symbols = np.array([SYMBOLS[acts.index(a) % len(SYMBOLS)] if style.marker_by_activation else "circle"
                        for a in style.activation], dtype=object)
    if style.marker_by_activation:  # legend entries for the marker shapes
        for i, act in enumerate(acts):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"activation: {act}",
                                     marker=dict(symbol=SYMBOLS[i % len(SYMBOLS)], color="grey", size=8)),
                          row=1, col=1)
    for k, (x_col, y_col) in enumerate(pairs, start=1):
        first = k == 1
        fig.add_trace(go.Scatter(x=df.loc[~feasible, x_col], y=df.loc[~feasible, y_col], mode="markers",
                                 name="infeasible (over a budget)", legendgroup="infeasible", showlegend=first,
                                 marker=dict(color="lightgrey", size=6), customdata=hover[~feasible],
                                 hovertemplate=template + "<extra>infeasible</extra>"), row=1, col=k)
        groups = [(None, feasible)] if style.numeric else [(v, feasible & (style.colour == v))
                                                         for v in sorted(set(style.colour[feasible]))]
        for value, sel in groups:
            marker = dict(size=7, color=style.colour[sel] if style.numeric else None, symbol=symbols[sel])
            if style.numeric:
                marker.update(colorscale="Viridis", cmin=float(np.nanmin(style.colour)),
                              cmax=float(np.nanmax(style.colour)), showscale=first,
                              colorbar=dict(title=style.colour_label))
            name = "feasible" if value is None else f"{style.colour_label}: {value}"
            fig.add_trace(go.Scatter(x=df.loc[sel, x_col], y=df.loc[sel, y_col], mode="markers", name=name,
                                     legendgroup=name, showlegend=first, marker=marker, customdata=hover[sel],
                                     hovertemplate=template + "<extra></extra>"), row=1, col=k)
        order = np.argsort(df.loc[front_rows, x_col].to_numpy())
        fig.add_trace(go.Scatter(x=df.loc[front_rows, x_col].to_numpy()[order],
                                 y=df.loc[front_rows, y_col].to_numpy()[order],
                                 mode="lines+markers" if len(pairs) == 1 else "markers", name="Pareto front",
                                 legendgroup="front", showlegend=first,
                                 marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color="red", width=2)),
                                 line=dict(color="red", width=1), customdata=hover[front_rows][order],
                                 hovertemplate=template + "<extra>Pareto front</extra>"), row=1, col=k)
        budget = budget_of(x_col, cfg)
        if budget:
            fig.add_vline(x=budget, line_dash="dash", line_color="black", row=1, col=k,
                          annotation_text=f"budget {budget:g}")
        fig.update_xaxes(title_text=axis_label(x_col, cfg), row=1, col=k)
        fig.update_yaxes(title_text=axis_label(y_col, cfg), row=1, col=k)
    fig.update_layout(template="plotly_white", height=620, width=max(760, 620 * len(pairs)),
                      hoverlabel=dict(align="left"), legend=dict(orientation="h", y=-0.22))
    plot = fig.to_html(full_html=False, include_plotlyjs=True, div_id="pareto-plot")
    position = {t: i for i, t in enumerate(df["trial"])}
    rows = np.array([position[t] for t in best["trial"]], dtype=int)  # the front in its own order
    best_style = Styling(style.colour_label, style.colour[rows], style.numeric, style.activation[rows],
                         style.marker_by_activation)
    path.write_text(HTML_PAGE.format(title=html.escape(title), plot=plot, n=len(best),
                                     table=_front_table(best, cols, best_style, export)), encoding="utf-8")


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table.front {{ border-collapse: collapse; font-size: 0.85em; }}
table.front th, table.front td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left;
  vertical-align: top; }}
table.front td:nth-last-child(-n+2) {{ font-family: monospace; word-break: break-all; max-width: 40em; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Every trial of the study; grey ones break a budget, red rings are the Pareto front. Hover a point for its
architecture, its metrics and the command that trains, quantizes and exports it.</p>
{plot}
<h2>Pareto front ({n} members)</h2>
{table}
</body></html>
"""

