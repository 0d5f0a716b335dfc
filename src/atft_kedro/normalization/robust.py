"""Fit the robust normalizer on every row of the train segment.

Per feature, the median and 1.4826 x MAD of every finite value on every training row (no
sampling), the scale floored at ``robust.scale_floor``; an all-missing feature gets
centre 0 and scale 1. The transform itself is in ``transform``.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from atft_kedro.normalization.frames import FeatureFrame, RowsByDate, check_feature_frame
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.state import MAD_TO_STD, CrossSectionState, NormalizerState
from atft_kedro.schemas.manifest import FeatureManifest
from atft_kedro.schemas.model_input import DateRange

logger = logging.getLogger(__name__)

_F32_BYTES = 4


def cross_section_flags(manifest: FeatureManifest, params: NormalizationParams) -> tuple[bool, ...]:
    """Per feature (manifest order): is it in a group standardised per day?

    Raises:
        ValueError: a configured group is not a group of the manifest at all.
    """
    configured = params.cross_section.groups
    feature_groups = {f.group for f in manifest.features}
    known = feature_groups | {g.name for g in manifest.groups}
    unknown = [g for g in configured if g not in known]
    if unknown:
        raise ValueError(
            f"normalization.cross_section.groups lists {unknown}, which are not feature groups of "
            f"manifest {manifest.hash[:12]} (its groups: {sorted(known)})"
        )
    empty = [g for g in configured if g not in feature_groups]
    if empty:
        logger.warning(
            "normalization.cross_section.groups %s have no features in this run's manifest; skipped", empty
        )
    return tuple(f.group in set(configured) for f in manifest.features)


def median_and_mad(values: np.ndarray) -> tuple[float, float, int]:
    """Exact median and median absolute deviation of the finite entries, by selection (no sort).

    Args:
        values: [n] float32, a scratch copy (it is overwritten); NaN/inf count as missing.

    Returns:
        (median, MAD, number of finite values); (0.0, 0.0, 0) when none is finite. With an
        even count the median is the mean of the two middle values, as ``np.median``.
    """
    infinite = np.isinf(values)
    if infinite.any():
        values[infinite] = np.nan
    del infinite
    n_valid = int(values.size - np.count_nonzero(np.isnan(values)))
    if n_valid == 0:
        return 0.0, 0.0, 0
    median = _middle(values, n_valid)
    np.subtract(values, np.float32(median), out=values)
    np.abs(values, out=values)
    return median, _middle(values, n_valid), n_valid


def _middle(values: np.ndarray, n_valid: int) -> float:
    """Median of the ``n_valid`` non-NaN entries of ``values`` (partitioned in place).

    NaN orders after every number, so the finite values' order statistics sit where they
    would without the NaNs. One partition at the upper middle (NumPy's fast single-kth
    path); with an even count the lower middle is the largest value before it.
    """
    upper = n_valid // 2
    values.partition(upper)
    if n_valid % 2:
        return float(values[upper])
    return (float(values[:upper].max()) + float(values[upper])) / 2.0


def blocks(n: int, bytes_each: int, block_mib: int) -> list[slice]:
    """Consecutive ranges of ``n`` items (columns or days), each range within ``block_mib`` MiB.

    Args:
        n: how many items.
        bytes_each: working memory one item needs.
        block_mib: the budget per range.

    Returns:
        Slices covering ``range(n)`` in order, each at least one item wide.
    """
    width = max(1, (block_mib * 2**20) // max(bytes_each, 1))
    return [slice(lo, min(lo + width, n)) for lo in range(0, n, width)]


def fit_robust_state(
    features: FeatureFrame,
    manifest: FeatureManifest,
    train: DateRange,
    params: NormalizationParams,
) -> NormalizerState:
    """Fit the normalizer on every row of the train segment.

    Args:
        features: the features table (eager or lazy): Date, Code, then the manifest's
            float32 features; nulls, NaN and inf count as missing.
        manifest: the feature manifest the table follows.
        train: the train segment (inclusive); no row outside it is read.
        params: normalization parameters (robust, cross_section, block_mib).

    Returns:
        The state, with per-feature median, scale and count of finite training values.
    """
    check_feature_frame(features, manifest)
    flags = cross_section_flags(manifest, params)
    rows = RowsByDate(features)
    n_rows = rows.between(train.start, train.end, ["Date"]).height
    if n_rows == 0:
        raise ValueError(
            f"table features has no row in the train segment {train.start}..{train.end}: cannot fit the normalizer"
        )
    names = manifest.names
    center = np.zeros(len(names))
    mad = np.zeros(len(names))
    n_valid = np.zeros(len(names), dtype=np.int64)
    # two float32 copies of a column's training values: the collected block and one scratch
    for block in blocks(len(names), n_rows * _F32_BYTES * 2, params.block_mib):
        columns = rows.between(train.start, train.end, names[block])
        for offset, name in enumerate(columns.columns):  # a loop over features, each vectorised
            scratch = columns.get_column(name).to_numpy(writable=True)
            i = block.start + offset
            center[i], mad[i], n_valid[i] = median_and_mad(scratch)
            del scratch
        del columns
    empty = n_valid == 0
    scale = np.maximum(MAD_TO_STD * mad, params.robust.scale_floor)
    center[empty] = 0.0
    scale[empty] = 1.0
    if empty.any():
        logger.warning(
            "normalizer: %d features have no finite training value (centre 0, scale 1): %s",
            int(empty.sum()), [n for n, e in zip(names, empty) if e][:20],
        )
    floored = (~empty) & (MAD_TO_STD * mad < params.robust.scale_floor)
    if floored.any():
        logger.info(
            "normalizer: %d features have MAD x %.4f below scale_floor %g (constant or mostly one value): %s",
            int(floored.sum()), MAD_TO_STD, params.robust.scale_floor,
            [n for n, f in zip(names, floored) if f][:20],
        )
    return NormalizerState(
        method="robust_median_mad",
        manifest_hash=manifest.hash,
        feature_names=tuple(names),
        fitted_on=train,
        n_train_rows=n_rows,
        n_valid=tuple(int(c) for c in n_valid),
        center=tuple(float(c) for c in center),
        scale=tuple(float(s) for s in scale),
        mad_to_std=MAD_TO_STD,
        scale_floor=params.robust.scale_floor,
        clip=params.robust.clip,
        cross_section=CrossSectionState(
            groups=params.cross_section.groups,
            standardized=flags,
            min_stocks=params.cross_section.min_stocks,
            std_floor=params.cross_section.std_floor,
        ),
        identity="",
    )
