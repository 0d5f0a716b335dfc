"""The feature manifest, built statically from ``params:feature_engineering``.

It lists every column the feature pipeline writes, in order, with its group, source
table(s) and availability lag, plus one status per group (on/off and why). The pipeline
checks that the columns it produced are exactly these names. The groups, their order and
their features come from the registry (``features.registry``).
"""

from __future__ import annotations

import logging

from atft_kedro.features import cross_sectional, interactions
from atft_kedro.features.base import Feature
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS, group_order, switch_name
from atft_kedro.schemas.manifest import FeatureManifest, FeatureSpec, GroupStatus

logger = logging.getLogger(__name__)

__all__ = ["DATA_GROUPS", "all_features", "build_feature_manifest", "enabled_features", "group_order"]


def all_features(params: FeatureParams) -> dict[str, list[Feature]]:
    """Every group's features as if every group were on (to check names in conf)."""
    catalogue = {g: group.features(params) for g, group in DATA_GROUPS.items()}
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
    order = group_order()
    specs = [
        FeatureSpec(name=f.name, group=g, source=f.source, lag_days=f.lag_days, description=f.description)
        for g in order for f in on[g]
    ]
    statuses = [
        GroupStatus(
            name=g, enabled=switches[g], n_features=len(on[g]),
            reason=notes.get(g, "") if switches[g] else f"turned off in conf: {switch_name(g)} is false",
        )
        for g in order
    ]
    return FeatureManifest(features=tuple(specs), groups=tuple(statuses))
