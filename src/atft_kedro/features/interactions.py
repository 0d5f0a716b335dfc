"""``int_``: a few products, ratios and differences of other features, listed in conf.

Each interaction names two features of other groups; it is built only when both of their
groups are on (the manifest says which were left out and why).
"""

from __future__ import annotations

import polars as pl

from atft_kedro.features.base import Feature, safe_div
from atft_kedro.features.params import InteractionSpec

GROUP = "interactions"


def interaction_expr(spec: InteractionSpec) -> pl.Expr:
    """The expression of one interaction over the assembled feature columns."""
    left, right = pl.col(spec.left).cast(pl.Float64), pl.col(spec.right).cast(pl.Float64)
    if spec.op == "product":
        return left * right
    if spec.op == "ratio":
        return safe_div(left, right)
    return left - right


def build(specs: list[InteractionSpec], available: dict[str, Feature]) -> list[Feature]:
    """Interactions whose two inputs are in ``available`` (name -> feature)."""
    out = []
    for spec in specs:
        if spec.left in available and spec.right in available:
            a, b = available[spec.left], available[spec.right]
            sources = "+".join(dict.fromkeys(a.source.split("+") + b.source.split("+")))
            out.append(Feature(spec.name, spec.description, interaction_expr(spec), sources,
                               max(a.lag_days, b.lag_days)))
    return out
