"""The LFR's gain against the inversion's round-trip error, as a bundle stores it for the app.

``python -m bench.invertibility`` trains an LFR on latents made worse on purpose (coarser inversion, added
noise, a lossy base) and measures, per point, the round trip r = mean |G(z) − x| over pixels and the
LFR's gain over the base, 100·(FID_base − FID_LFR)/FID_base, for each metric; ``--store`` writes the curve
to BUNDLE/invertibility.json. The bundle's own round trip is its shipped latents' ``round_trip_mae``.
"""

from __future__ import annotations

from bfr_core.infra.checkpoint import load_stored_measurement

INVERTIBILITY_FILE = "invertibility.json"


def failure_point(points: list[dict]) -> dict | None:
    """The point of smallest round trip from which on (it and every point with a larger round trip) the
    LFR no longer helps; None when it helps at the largest round trip measured."""
    ordered = sorted(points, key=lambda p: p["round_trip_mae"])
    for i, p in enumerate(ordered):
        if all(q["regime"] != "helps" for q in ordered[i:]):
            return p
    return None


def failure_points(points: list[dict]) -> dict[str, dict | None]:
    """:func:`failure_point` of each kind of damage separately ("inversion", "noise", "lossy base"): the
    same round trip can come from a coarse inversion's structured error or from isotropic noise, and the
    LFR survives them differently."""
    kinds = dict.fromkeys(p["kind"] for p in points)
    return {k: failure_point([p for p in points if p["kind"] == k]) for k in kinds}


def load_invertibility(bundle) -> dict | None:
    """The bundle's stored curve, or None when it has none; a file that is not one is refused by name."""
    keys = ("label", "kind", "round_trip_mae", "gain_pct", "regime")

    def valid(stored):
        points = stored["points"]
        return isinstance(points, list) and points and all(all(k in p for k in keys) for p in points)

    return load_stored_measurement(bundle.path / INVERTIBILITY_FILE, valid, "invertibility curve")


def own_round_trip(bundle) -> float | None:
    """The round trip of the bundle's shipped latents (``bfr invert`` records it), or None."""
    value = bundle.meta.get("latents", {}).get("round_trip_mae")
    return float(value) if isinstance(value, (int, float)) else None
