"""The feature manifest, built statically from ``params:feature_engineering``.

It lists every column the feature pipeline writes, in order, with its group, source
table(s) and availability lag, plus one status per group (on/off and why). The pipeline
checks that the columns it produced are exactly these names.
"""

from __future__ import annotations

import logging
from types import ModuleType

from atft_kedro.features import (
    beta_alpha, cross_sectional, evt, flow, grf, interactions, margin, margin_alert, mkt, px, sector,
    short, short_positions, stmt, tech,
)
from atft_kedro.features.base import Feature
from atft_kedro.features.params import FeatureParams
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec, GroupStatus

logger = logging.getLogger(__name__)

#: Groups computed from the source tables, in manifest order. Each optional source table
#: (weekly flows, margin balances, margin alerts, sector short selling, short positions,
#: statements, earnings calendar) feeds its own group, so a missing or empty table costs
#: only that group's features (null, validity flag 0).
DATA_GROUPS: dict[str, ModuleType] = {
    "px": px, "tech": tech, "mkt": mkt, "beta_alpha": beta_alpha, "sector": sector, "flow": flow,
    "margin": margin, "margin_alert": margin_alert, "short": short, "short_positions": short_positions,
    "stmt": stmt, "evt": evt, "grf": grf,
}
#: Every group, in manifest order (interactions and z-scores are built from the others).
GROUP_ORDER: tuple[str, ...] = (*DATA_GROUPS, interactions.GROUP, cross_sectional.GROUP)


def _switch(group: str) -> str:
    return f"params:feature_engineering.groups.{group}"


def all_features(params: FeatureParams) -> dict[str, list[Feature]]:
    """Every group's features as if every group were on (to check names in conf)."""
    catalogue = {g: module.features(params) for g, module in DATA_GROUPS.items()}
    flat = {f.name: f for fs in catalogue.values() for f in fs}
    catalogue[interactions.GROUP] = interactions.build(params.interactions, flat)
    flat |= {f.name: f for f in catalogue[interactions.GROUP]}
    catalogue[cross_sectional.GROUP] = cross_sectional.build(params.cross_sectional, flat)
    return catalogue


def enabled_features(params: FeatureParams) -> tuple[dict[str, list[Feature]], dict[str, str]]:
    """The features of the groups that are on, and a note per group about what is left out.

    Raises:
        ValueError: an interaction or z-score names a feature no group defines.
    """
    catalogue = all_features(params)
    every = {f.name: g for g, fs in catalogue.items() for f in fs}
    notes: dict[str, str] = {}
    unknown = [n for s in params.interactions for n in (s.left, s.right) if n not in every]
    if unknown:
        raise ValueError(
            f"params:feature_engineering.interactions name unknown features {unknown}")
    unknown = [n for n in params.cross_sectional.features if n not in every]
    if unknown:
        raise ValueError(
            f"params:feature_engineering.cross_sectional.features names unknown features {unknown}")
    switches = params.groups.model_dump()
    on = {g: (catalogue[g] if switches[g] else []) for g in DATA_GROUPS}
    available = {f.name: f for fs in on.values() for f in fs}
    built_int = interactions.build(params.interactions, available) if switches[interactions.GROUP] else []
    if switches[interactions.GROUP]:
        skipped = [s.name for s in params.interactions if s.name not in {f.name for f in built_int}]
        if skipped:
            notes[interactions.GROUP] = f"left out (an input group is off): {skipped}"
    on[interactions.GROUP] = built_int
    available |= {f.name: f for f in built_int}
    built_csz = (cross_sectional.build(params.cross_sectional, available)
                 if switches[cross_sectional.GROUP] else [])
    if switches[cross_sectional.GROUP]:
        skipped = [n for n in params.cross_sectional.features if n not in available]
        if skipped:
            notes[cross_sectional.GROUP] = f"left out (their group is off): {skipped}"
    on[cross_sectional.GROUP] = built_csz
    for group, note in notes.items():
        logger.info("feature group %s: %s", group, note)
    return on, notes


def build_feature_manifest(params: FeatureParams) -> FeatureManifest:
    """The manifest of the features ``params`` produce (names, groups, sources, lags, statuses)."""
    on, notes = enabled_features(params)
    switches = params.groups.model_dump()
    specs = [
        FeatureSpec(name=f.name, group=g, source=f.source, lag_days=f.lag_days, description=f.description)
        for g in GROUP_ORDER for f in on[g]
    ]
    statuses = [
        GroupStatus(
            name=g, enabled=switches[g], n_features=len(on[g]),
            reason=notes.get(g, "") if switches[g] else f"turned off in conf: {_switch(g)} is false",
        )
        for g in GROUP_ORDER
    ]
    return FeatureManifest(features=tuple(specs), groups=tuple(statuses))
