"""The ``features`` table, assembled lazily by blocks of whole trading days.

The group nodes' frames (``fe_<group>_features``: Parquet files in a Kedro run, scanned as
LazyFrames) are in (Date, Code) output order with the panel's row count. The assembly never
holds the whole wide table: ``assemble`` checks every group's columns and height from its
schema and metadata, then returns a ``pl.LazyFrame`` whose rows are produced block by block.
A block is a run of consecutive trading days (a day is never split, so the per-day
cross-sectional z-scores see every stock of the day); for each block it reads the block's
rows of every group (a row slice of each file), adds the interactions and the z-scores of
the block and puts the columns in manifest order. The ``features`` dataset streams that
LazyFrame to Parquet (``sink_parquet``), so peak memory is a few blocks, whatever the
universe. The result does not depend on the block size (each value is computed from its
own row or from its own day only); ``tests/feature_engineering/test_assembly_blocks.py``
checks that bit for bit.

Block size: ``feature_engineering.assembly.block_mib`` MiB of float32 features per block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from polars.io.plugins import register_io_source

from atft_kedro.features import cross_sectional
from atft_kedro.features.base import CODE, DATE, DAY, Feature, to_float32
from atft_kedro.features.params import CrossSectionalParams
from atft_kedro.schemas.manifest import FeatureManifest

logger = logging.getLogger(__name__)

KEYS = (DATE, CODE)
_F32_BYTES = 4
#: float32 copies of a block's cells alive at once while it is built (group slices, the
#: wide block, the z-scores, the selected output handed to the writer)
_COPIES_PER_BLOCK = 4


class FeatureSetMismatchError(ValueError):
    """The produced feature columns differ from the feature manifest."""


@dataclass(frozen=True)
class AssemblyPlan:
    """What the block reader needs: the groups' frames and the columns each block gets.

    Attributes:
        keys: Date, Code, ``_d`` of every output row, in (Date, Code) order.
        groups: (name, frame) of every group that is on, lazy or eager, same rows as ``keys``.
        interactions: the ``int_`` features, computed on the block's row.
        zscores: the ``_csz`` features, computed over the block's days.
        cross_sectional: their clip and minimum number of stocks.
        names: the manifest's feature names, the output's column order after Date, Code.
    """

    keys: pl.DataFrame
    groups: tuple[tuple[str, pl.LazyFrame], ...]
    interactions: tuple[Feature, ...]
    zscores: tuple[Feature, ...]
    cross_sectional: CrossSectionalParams
    names: tuple[str, ...]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {DATE: pl.Date(), CODE: pl.String(), **{n: pl.Float32() for n in self.names}}


def check_groups(
    keys: pl.DataFrame,
    enabled: dict[str, list[Feature]],
    group_names: Sequence[str],
    frames: Sequence[pl.DataFrame | pl.LazyFrame],
) -> tuple[tuple[str, pl.LazyFrame], ...]:
    """Check each group's columns against the manifest and its height against the keys.

    Reads only schemas and row counts (Parquet metadata for a scan), never the values.

    Args:
        keys: the output keys (its height is the panel's).
        enabled: group -> the features that are on (``manifest.enabled_features``).
        group_names: the data groups, in the order of ``frames``.
        frames: one frame per data group (empty when the group is off).

    Returns:
        (group, lazy frame) of the groups with columns.

    Raises:
        FeatureSetMismatchError: a group's columns or row count differ.
    """
    if len(frames) != len(group_names):
        raise ValueError(f"assemble_features needs {len(group_names)} group frames, got {len(frames)}")
    out = []
    for group, frame in zip(group_names, frames, strict=True):
        lazy = frame.lazy()
        columns = lazy.collect_schema().names()
        expected = [f.name for f in enabled[group]]
        if columns != expected:
            raise FeatureSetMismatchError(
                f"feature group '{group}' delivered {columns[:5]}... ({len(columns)}) but the manifest "
                f"lists {expected[:5]}... ({len(expected)})")
        if not columns:
            continue
        height = frame.height if isinstance(frame, pl.DataFrame) else lazy.select(pl.len()).collect().item()
        if height != keys.height:
            raise FeatureSetMismatchError(
                f"feature group '{group}' has {height} rows, the panel {keys.height}")
        out.append((group, lazy))
    return tuple(out)


def check_columns(produced: Sequence[str], manifest: FeatureManifest) -> None:
    """Raise unless the produced feature names are exactly the manifest's (in any order)."""
    if sorted(produced) != sorted(manifest.names):
        raise FeatureSetMismatchError(
            f"features have {len(produced)} columns, the manifest lists {len(manifest)}: missing "
            f"{sorted(set(manifest.names) - set(produced))[:20]}, unexpected "
            f"{sorted(set(produced) - set(manifest.names))[:20]}")


def day_blocks(day: np.ndarray, rows_per_block: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of consecutive whole days, each about ``rows_per_block`` rows.

    Args:
        day: [rows] the trading-day index of each row, non-decreasing (rows in Date order).
        rows_per_block: the target size; a block holds at least one whole day.

    Returns:
        Ranges covering ``range(len(day))`` in order; a day's rows never span two ranges.
    """
    n = day.size
    if n == 0:
        return []
    if (np.diff(day) < 0).any():
        raise ValueError("feature keys are not in Date order: the assembly cannot cut them into days")
    day_starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])  # first row of each day
    bounds = [0]
    while bounds[-1] < n:
        target = bounds[-1] + max(rows_per_block, 1)
        # the first day start at or after target, but at least one day after the block's start
        k = int(np.searchsorted(day_starts, target, side="left"))
        nxt = int(day_starts[k]) if k < day_starts.size else n
        if nxt <= bounds[-1]:
            k = int(np.searchsorted(day_starts, bounds[-1], side="right"))
            nxt = int(day_starts[k]) if k < day_starts.size else n
        bounds.append(nxt)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def rows_per_block(n_features: int, block_mib: int) -> int:
    """Rows of a block whose working copies of ``n_features`` float32 columns fit ``block_mib`` MiB."""
    per_row = max(n_features, 1) * _F32_BYTES * _COPIES_PER_BLOCK
    return max(1, (block_mib * 2**20) // per_row)


def build_block(plan: AssemblyPlan, start: int, stop: int, columns: Sequence[str] | None) -> pl.DataFrame:
    """Rows [start, stop) of the features table (whole days), all columns or ``columns`` only.

    Args:
        plan: the assembly plan.
        start: first row (the first row of a day).
        stop: one past the last row (one past the last row of a day).
        columns: the output columns wanted (None: all), in output order.
    """
    keys = plan.keys.slice(start, stop - start)
    wanted = None if columns is None else set(columns)
    if wanted is not None and wanted <= set(KEYS):
        return keys.select([c for c in columns if c in KEYS])
    parts = [keys.select(KEYS)]
    for _, frame in plan.groups:
        parts.append(frame.slice(start, stop - start).collect())
    wide = pl.concat(parts, how="horizontal")
    del parts
    if plan.interactions:
        wide = wide.with_columns(to_float32(f.expr, f.name) for f in plan.interactions)
    if plan.zscores:
        zscores = cross_sectional.compute(wide, keys.get_column(DAY), list(plan.zscores), plan.cross_sectional)
        wide = pl.concat([wide, zscores], how="horizontal")
        del zscores
    return wide.select(KEYS + plan.names if columns is None else list(columns))


def block_source(plan: AssemblyPlan, bounds: list[tuple[int, int]]) -> Callable[..., Iterator[pl.DataFrame]]:
    """The Polars IO source that yields the table's blocks (projection and filter applied)."""

    def source(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        produced = 0
        for start, stop in bounds:  # a loop over blocks of days, each vectorised
            if n_rows is not None and produced >= n_rows:
                return
            block = build_block(plan, start, stop, with_columns)
            if predicate is not None:
                block = block.filter(predicate)
            if n_rows is not None:
                block = block.head(n_rows - produced)
            produced += block.height
            yield block

    return source


def assemble(
    keys: pl.DataFrame,
    manifest: FeatureManifest,
    enabled: dict[str, list[Feature]],
    group_names: Sequence[str],
    frames: Sequence[pl.DataFrame | pl.LazyFrame],
    cs_params: CrossSectionalParams,
    block_mib: int,
) -> pl.LazyFrame:
    """The features table (Date, Code, the manifest's float32 features) as a block-wise LazyFrame.

    Every check that needs no values runs here, before anything is computed: each group's
    columns and height, the produced names against the manifest, float32 for every column.

    Args:
        keys: Date, Code, ``_d`` in (Date, Code) order (``select_feature_keys``).
        manifest: the feature manifest (already checked against the params).
        enabled: group -> features that are on, including ``interactions`` and ``cross_sectional``.
        group_names: the data groups in the order of ``frames``.
        frames: the group nodes' outputs (eager or lazy), (Date, Code) order.
        cs_params: the cross-sectional z-score parameters.
        block_mib: MiB of float32 features per block (``assembly.block_mib``).

    Returns:
        A LazyFrame; collecting or sinking it builds the table block by block.

    Raises:
        FeatureSetMismatchError: a group's columns or height, or the table's columns, differ.
    """
    groups = check_groups(keys, enabled, group_names, frames)
    base = {name: dtype for _, frame in groups for name, dtype in frame.collect_schema().items()}
    interactions = tuple(enabled.get("interactions", []))
    zscores = tuple(enabled.get("cross_sectional", []))
    produced = [*base, *(f.name for f in interactions), *(f.name for f in zscores)]
    check_columns(produced, manifest)
    bad_types = [c for c, t in base.items() if t != pl.Float32]
    if bad_types:
        raise FeatureSetMismatchError(f"features not float32: {bad_types[:20]}")
    plan = AssemblyPlan(
        keys=keys.select(DATE, CODE, DAY), groups=groups, interactions=interactions, zscores=zscores,
        cross_sectional=cs_params, names=tuple(manifest.names),
    )
    bounds = day_blocks(keys.get_column(DAY).to_numpy(), rows_per_block(len(manifest.names), block_mib))
    logger.info("features: %d rows x %d features, assembled in %d blocks of whole days (%d MiB each)",
                keys.height, len(manifest.names), len(bounds), block_mib)
    return register_io_source(block_source(plan, bounds), schema=plan.schema, explain_name="feature_assembly")
