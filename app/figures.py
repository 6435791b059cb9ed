"""Plotly charts for the image views (no computation beyond layout)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go


PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def class_histogram(hist_base, hist_refined, names: list[str] | None = None) -> go.Figure:
    """How many samples the classifier assigns to each class, base beside refined; ``names`` label the
    classes ("3 cat"), else their numbers."""
    x = names or [str(k) for k in range(len(hist_base))]
    fig = go.Figure([go.Bar(name="base", x=x, y=hist_base), go.Bar(name="refined", x=x, y=hist_refined)])
    fig.update_layout(
        barmode="group",
        height=260,
        margin=dict(l=30, r=10, t=30, b=30),
        title="classifier's predicted classes",
        xaxis_title="class",
        xaxis_dtick=1,
    )
    return fig


def class_points(xy, labels, name: str, what: str, size: int, symbol: str, numbered: bool = False):
    """2-D points coloured by class, each hover naming what it is and its class; ``numbered`` points
    carry their row number as ``customdata`` (what a click on the latent map reports) and in the hover."""
    text = [f"{what}, class {int(c)}" for c in labels]
    if numbered:
        text = [f"{t} · #{i}: click to inspect" for i, t in enumerate(text)]
    return go.Scattergl(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="markers",
        name=name,
        marker=dict(size=size, color=[PALETTE[int(c) % 10] for c in labels], symbol=symbol),
        text=text,
        customdata=list(range(len(labels))) if numbered else None,
        hoverinfo="text",
    )


def latent_scatter(
    prior_xy, biased_xy, biased_labels, refined_xy, refined_labels, title: str, axes: tuple | None = None
) -> go.Figure:
    """Prior draws (grey), biased latents (rings by class, numbered for a click) and refined draws (crosses)
    on a 2-D map; ``axes`` names its axes (a bias plane) and draws the prior's point (1, 1) as a guide."""
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=prior_xy[:, 0],
            y=prior_xy[:, 1],
            mode="markers",
            name="prior z ~ N(0, I)",
            marker=dict(size=4, color="lightgray"),
            hoverinfo="name",
        )
    )
    name = "biased latents G⁻¹(real)"
    fig.add_trace(class_points(biased_xy, biased_labels, name, "real image", 5, "circle-open", numbered=True))
    if refined_xy is not None:
        fig.add_trace(class_points(refined_xy, refined_labels, "LFR-refined latents", "LFR latent", 7, "x"))
    fig.update_layout(
        title=title, height=520, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h")
    )
    if axes is not None:
        fig.update_layout(
            xaxis=dict(title=axes[0], rangemode="tozero"),
            yaxis=dict(title=axes[1], rangemode="tozero"),
            margin=dict(l=60, r=10, t=40, b=50),
        )
        if axes[0].startswith("‖z‖"):  # the prior's point: N(0, I) draws sit around (1, 1)
            fig.add_hline(y=1, line=dict(color="gray", dash="dot", width=1))
            fig.add_vline(x=1, line=dict(color="gray", dash="dot", width=1))
    return fig


def norm_histogram(norms: dict, shell_width: float | None = None, title: str | None = None) -> go.Figure:
    """Overlaid histograms of ‖z‖/√d, one per latent cloud (a view UMAP cannot distort); with
    ``shell_width`` the band 1 ± 2·width where N(0, I) draws concentrate is shaded."""
    fig = go.Figure(
        [
            go.Histogram(x=v, name=k, opacity=0.6, nbinsx=40, histnorm="probability density")
            for k, v in norms.items()
        ]
    )
    fig.update_layout(
        barmode="overlay",
        height=340,
        title=title or "‖z‖/√d (1 for the prior in high dimension)",
        xaxis_title="‖z‖/√d",
        margin=dict(l=40, r=10, t=40, b=40),
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),  # below the axis title, not on it
    )
    if shell_width is not None:
        fig.add_vrect(
            x0=1 - 2 * shell_width, x1=1 + 2 * shell_width, fillcolor="grey", opacity=0.15, line_width=0
        )
    return fig


def variance_map(var: np.ndarray, title: str) -> go.Figure:
    """A heatmap of per-pixel variance (H, W): where the biased latents shrink (< 1) or spread (> 1)
    against the prior's variance 1, on a diverging scale centred at 1."""
    fig = go.Figure(
        go.Heatmap(
            z=var[::-1],
            colorscale="RdBu",
            zmid=1.0,
            colorbar=dict(title="variance"),
            hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=300,
        title=title,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(visible=False),
        yaxis=dict(visible=False, scaleanchor="x"),
    )
    return fig


SECOND_METRIC = "fid2"  # the independent extractor's FID, drawn dashed when the sweep stored it


def sweep_curves(sweep: dict) -> go.Figure:
    """Primary metric vs refiner NFE per refiner (solid) and, when stored, the independent metric
    (dashed): a gain counts only where both curves agree."""
    fig = go.Figure()
    metrics = sweep.get("metrics", {})
    for mode, colour in (("lfr", "#d62728"), ("dfr", "#1f77b4")):
        if mode not in sweep:
            continue
        nfe, q = zip(*sweep[mode])
        line = dict(color=colour)
        fig.add_trace(
            go.Scatter(x=nfe, y=q, mode="lines+markers", name=f"{mode.upper()} (Euler steps)", line=line)
        )
        second = [metrics.get(f"{mode} {k}", {}).get(SECOND_METRIC) for k in nfe]
        if all(v is not None for v in second):
            fig.add_trace(
                go.Scatter(
                    x=nfe,
                    y=second,
                    mode="lines+markers",
                    name=f"{mode.upper()}, {SECOND_METRIC.upper()} (independent)",
                    line={**line, "dash": "dot"},
                )
            )
    # The base as lines in the legend, not add_hline annotations: on a log axis an annotation's y is read
    # in log units, so a base of 220 was placed at 10^220 and stretched the axis to 10^18 and beyond.
    xs = nfe_span(sweep)
    base_lines = [("base", sweep["base"], "dash")]
    if (base2 := metrics.get("base", {}).get(SECOND_METRIC)) is not None:
        base_lines.append((f"base, {SECOND_METRIC.upper()}", base2, "dot"))
    for name, y, dash in base_lines:
        fig.add_trace(go.Scatter(x=xs, y=[y, y], mode="lines", name=name, line=dict(color="gray", dash=dash)))
    note = f"<br><sup>{sweep['note']}</sup>" if sweep.get("note") else ""
    fig.update_layout(
        title=f"{sweep['metric'].upper()} vs refiner NFE (lower is better){note}",
        height=440,
        xaxis_title="refiner NFE",
        yaxis_title=sweep["metric"],
        yaxis=dict(type="log", range=log_range(plotted_values(fig))),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
        margin=dict(l=50, r=10, t=60, b=40),
    )
    return fig


def nfe_span(sweep: dict) -> list[int]:
    """[smallest, largest] refiner NFE of the sweep's curves."""
    nfes = [k for mode in ("lfr", "dfr") if mode in sweep for k, _ in sweep[mode]]
    return [min(nfes), max(nfes)]


def plotted_values(fig: go.Figure) -> list[float]:
    return [float(v) for trace in fig.data for v in trace.y if v is not None]


def log_range(values: list[float], margin: float = 1.15) -> list[float]:
    """A log axis's range (in log10 units, as plotly wants it) that holds every value with a margin."""
    lo, hi = min(values), max(values)
    return [math.log10(lo / margin), math.log10(hi * margin)]


def drift_lines(distances, nfes) -> go.Figure:
    """One line per sample: its RMS pixel distance from its base image against LFR Euler steps, and
    their mean. A line that keeps rising after the quality curve has turned is over-refinement."""
    fig = go.Figure()
    for i, d in enumerate(distances.tolist()):
        fig.add_trace(go.Scatter(x=list(nfes), y=d, mode="lines", name=f"sample {i + 1}", line=dict(width=1)))
    mean = distances.mean(0).tolist()
    fig.add_trace(
        go.Scatter(x=list(nfes), y=mean, mode="lines+markers", name="mean", line=dict(color="black", width=3))
    )
    fig.update_layout(
        title="each sample's drift from G(z)",
        height=400,
        xaxis_title="LFR Euler steps",
        yaxis_title="RMS pixel change from G(z)",
        margin=dict(l=40, r=10, t=40, b=40),
    )
    return fig


LABEL_SIDES = ("middle right", "top left", "bottom right", "middle left")  # neighbours' names apart


def budget_chart(stored: dict) -> go.Figure:
    """Quality against *total* NFE: the base given more solver steps (a line) beside each refiner after
    the default base (a labelled point); the independent metric, when stored, as hollow markers."""
    metric, rows = stored["metric"], stored["rows"]
    fig = go.Figure()
    for key, dash, symbol, suffix in (
        (metric, None, "circle", ""),
        (SECOND_METRIC, "dot", "circle-open", " · FID2"),
    ):
        if not all(key in r for r in rows):
            continue
        base = [r for r in rows if r["row"].startswith("base")]
        fig.add_trace(
            go.Scatter(
                x=[r["total_nfe"] for r in base],
                y=[r[key] for r in base],
                mode="lines+markers",
                name=f"more base steps{suffix}",
                line=dict(color="#7f7f7f", dash=dash),
                marker=dict(symbol=symbol, size=9),
            )
        )
        refined = sorted((r for r in rows if not r["row"].startswith("base")), key=lambda r: r[key])
        labelled = key == metric  # names on the first metric's points only: the second's would overlap them
        fig.add_trace(
            go.Scatter(
                x=[r["total_nfe"] for r in refined],
                y=[r[key] for r in refined],
                mode="markers+text" if labelled else "markers",
                text=[r["row"].replace("_", " ").upper() for r in refined] if labelled else None,
                textposition=[LABEL_SIDES[i % len(LABEL_SIDES)] for i in range(len(refined))],
                name=f"default base + a refiner{suffix}",
                marker=dict(color="#d62728", symbol=symbol, size=11),
            )
        )
    fig.update_layout(
        title=f"{metric.upper()} at equal total NFE (lower is better)<br><sup>{stored['n']} samples, "
        f"precomputed by `{stored['command']}`</sup>",
        height=400,
        xaxis_title="total network evaluations per sample",
        yaxis_title=metric,
        margin=dict(l=40, r=10, t=60, b=40),
    )
    return fig


def alpha_nfe_heatmap(stored: dict, suggested: float | None = None) -> go.Figure:
    """The over-refinement map: quality over α (rows) × LFR Euler NFE (columns), each cell's value written
    in it and hovered exactly, the best cell outlined; the base's quality in the title for scale; a dashed
    line at ``suggested`` (the α estimated from the latents) where it falls within the map's rows.

    The colour scale runs from min(base, best cell) (bright) to the worst cell (dark), with the base marked on
    the colour bar: where no cell beats the base, no cell is bright, so a map of settings that all make the
    samples worse does not show a bright "good" corner."""
    m = stored["map"]
    nfes = [str(k) for k in m["nfes"]]
    alphas = [f"{a:g}" for a in m["alphas"]]
    cells = [q for row in m["quality"] for q in row]
    zmin, zmax = min(m["base"], min(cells)), max(m["base"], max(cells))
    ticks = {zmin: f"{zmin:.3g}", zmax: f"{zmax:.3g}"} | {
        m["base"]: f"base {m['base']:.3g}"
    }  # base wins a tie
    fig = go.Figure(
        go.Heatmap(
            z=m["quality"],
            x=nfes,
            y=alphas,
            zmin=zmin,
            zmax=zmax,
            colorscale="Viridis_r",  # dark = high = worse
            text=[[f"{q:.3g}" for q in row] for row in m["quality"]],
            texttemplate="%{text}",
            hovertemplate="α %{y}, NFE %{x}: " + m["metric"].upper() + " %{z:.4g}<extra></extra>",
            colorbar=dict(title=m["metric"].upper(), tickvals=list(ticks), ticktext=list(ticks.values())),
        )
    )
    best = m["best"]
    fig.add_shape(
        type="rect",
        x0=nfes.index(str(best["nfe"])) - 0.5,
        x1=nfes.index(str(best["nfe"])) + 0.5,
        y0=alphas.index(f"{best['alpha']:g}") - 0.5,
        y1=alphas.index(f"{best['alpha']:g}") + 0.5,
        line=dict(color="#d62728", width=3),
    )
    row = suggested_row(m["alphas"], suggested)
    marked = ""
    if row is not None:
        # a white dash on a black casing, legible on the map's yellow and its purple; named in the subtitle,
        # not on the map, where a label would cover a cell's value
        fig.add_hline(y=row, line=dict(color="black", width=5))
        fig.add_hline(y=row, line=dict(color="white", width=2, dash="dash"))
        marked = f"<br>dashed: suggested α {suggested:.2f}"
    fig.update_layout(
        # short lines: the chart has half of a 1,024 px page; the command is in the text beside it
        title=f"LFR {m['metric'].upper()} over α × NFE (lower is better)<br><sup>base {m['base']:.3g} · "
        f"best α {best['alpha']:g} at NFE {best['nfe']}: {best['quality']:.3g} · n = {stored['n']}"
        f"{marked}</sup>",
        height=420,
        xaxis_title="LFR Euler steps (NFE)",
        yaxis_title="α",
        margin=dict(l=40, r=10, t=90 if marked else 70, b=40),
    )
    return fig


def suggested_row(alphas: list[float], alpha: float | None) -> float | None:
    """Where α falls on a map whose rows are ``alphas`` (ascending): a fractional row index, linear between
    neighbouring rows; None when α is None or outside the rows."""
    if alpha is None or not alphas[0] <= alpha <= alphas[-1]:
        return None
    for k in range(len(alphas) - 1):
        lo, hi = alphas[k], alphas[k + 1]
        if lo <= alpha <= hi:
            return k + (alpha - lo) / (hi - lo)
    return float(len(alphas) - 1)
