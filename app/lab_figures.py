"""The bias lab's plotly figures: 2-D point clouds, learned fields, training curves, energy bars."""

from __future__ import annotations


import plotly.graph_objects as go
import torch


def toy_panel(points: dict, title: str, trajectory: torch.Tensor | None = None, box=None) -> go.Figure:
    """2-D point clouds (the first in grey), optionally with up to 60 grey paths ``trajectory`` (steps, n,
    2); ``box`` ((x0, x1), (y0, y1)) fixes the axes, so frames of a moving cloud share one frame."""
    fig = go.Figure()
    if trajectory is not None:
        for i in range(min(60, trajectory.shape[1])):
            fig.add_trace(
                go.Scatter(
                    x=trajectory[:, i, 0],
                    y=trajectory[:, i, 1],
                    mode="lines",
                    showlegend=False,
                    line=dict(color="rgba(120,120,120,0.5)", width=1),
                    hoverinfo="skip",
                )
            )
    for (name, pts), colour in zip(points.items(), ("#bbbbbb", "#d62728", "#ff7f0e", "#1f77b4")):
        fig.add_trace(
            go.Scatter(  # SVG, not WebGL: the lab redraws its panels often, and a page has few WebGL contexts
                x=pts[:, 0],
                y=pts[:, 1],
                mode="markers",
                name=name,
                marker=dict(size=3, color=colour, opacity=0.6),
            )
        )
    fig.update_layout(
        title=title,
        height=360,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h"),
        yaxis=dict(scaleanchor="x"),
    )
    if box is not None:
        fig.update_layout(xaxis=dict(range=list(box[0])), yaxis=dict(range=list(box[1]), scaleanchor="x"))
    return fig


def bounding_box(*clouds: torch.Tensor, pad: float = 0.05) -> tuple:
    """((x0, x1), (y0, y1)) around every point of ``clouds`` (each (…, 2)), padded by ``pad`` of the span."""
    pts = torch.cat([c.reshape(-1, 2) for c in clouds])
    lo, hi = pts.min(0).values, pts.max(0).values
    margin = pad * (hi - lo)
    return tuple((float(lo[i] - margin[i]), float(hi[i] + margin[i])) for i in range(2))


def field_panel(points: dict, field, title: str) -> go.Figure:
    """``toy_panel`` with a learned velocity field drawn as arrows from each grid point (x → x + v)."""
    fig = toy_panel(points, title)
    grid, v = field
    scale = 0.5 * float((grid[1] - grid[0]).norm()) / max(float(v.norm(dim=1).median()), 1e-9)
    xs, ys = [], []
    for (x, y), (u, w) in zip(grid.tolist(), (v * scale).tolist()):
        xs += [x, x + u, None]
        ys += [y, y + w, None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="learned velocity v(0, ·) (scaled)",
            line=dict(color="black", width=1),
            hoverinfo="skip",
        )
    )
    heads = grid + v * scale
    fig.add_trace(
        go.Scatter(
            x=heads[:, 0],
            y=heads[:, 1],
            mode="markers",
            showlegend=False,
            marker=dict(size=3, color="black"),
            hoverinfo="skip",
        )
    )
    return fig


def training_curves(curves: dict, energy: dict | None = None) -> go.Figure:
    """Training loss per step of each lab stage (base, LFR, DFR) on one log axis, drawn while they
    train; once done, each stage's energy distance to held-out points is named in the legend."""
    fig = go.Figure()
    colours = {"base": "#d62728", "LFR": "#ff7f0e", "DFR": "#1f77b4"}
    scores = {"base": "base", "LFR": "lfr", "DFR": "dfr"}
    for stage, points in list(curves.items()):
        points = list(points)  # a snapshot: the training thread may still append
        if not points:
            continue
        steps, losses = zip(*points)
        label = stage
        if energy is not None and scores.get(stage) in energy:
            label += f" (energy distance {energy[scores[stage]]:.4f})"
        fig.add_trace(
            go.Scatter(x=steps, y=losses, mode="lines", name=label, line=dict(color=colours.get(stage)))
        )
    fig.update_layout(
        title="training loss per step (updates while the lab trains)",
        height=320,
        xaxis_title="step of this stage",
        yaxis_title="flow-matching loss",
        yaxis_type="log",
        margin=dict(l=40, r=10, t=40, b=40),
    )
    return fig


def energy_bars(values: dict) -> go.Figure:
    """One bar per method: energy distance to held-out points (the last bar is the real-data floor)."""
    colours = ["#d62728", "#ff7f0e", "#1f77b4", "#999999"]
    fig = go.Figure(
        go.Bar(
            x=list(values),
            y=list(values.values()),
            marker_color=colours[: len(values)],
            text=[f"{v:.4f}" for v in values.values()],
            textposition="outside",
        )
    )
    fig.update_layout(
        title="energy distance to held-out points (lower is better)",
        height=360,
        margin=dict(l=40, r=10, t=40, b=40),
        yaxis_title="energy distance",
    )
    return fig
