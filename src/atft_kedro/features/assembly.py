"""The ``features`` table: the group files side by side, plus the columns built from them.

The group nodes' frames (``fe_<group>_features``: Parquet files in a Kedro run, scanned as
LazyFrames) are in (Date, Code) output order with the panel's row count. The wide table is
never copied: ``assemble`` checks every group's columns and height from its schema and
metadata and returns a :class:`FeatureTable`, the output keys and a list of *parts* (frames of
some feature columns with the keys' rows): the groups themselves and one ``derived`` part, the
interactions and cross-sectional z-scores, computed a block of whole trading days at a time
from the group columns they read. ``FeatureTable.lazy()`` is the table as a ``pl.LazyFrame``
whose rows come block by block, each block reading only the parts that hold the columns asked
for (projection) and only the blocks whose keys pass a Date/Code filter (predicate). The
``features`` dataset (``datasets.feature_table``) writes the keys and the derived part and
refers to the group files for the rest, so a Kedro run writes each feature once.

A block is a run of consecutive trading days (a day is never split, so the per-day
cross-sectional z-scores see every stock of the day). The result does not depend on the block
size (each value is computed from its own row or its own day only);
``tests/feature_engineering/test_assembly_blocks.py`` checks that bit for bit.

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
from atft_kedro.features.base import CODE, DATE, Feature, to_float32
from atft_kedro.features.params import CrossSectionalParams
from atft_kedro.schemas.manifest import FeatureManifest

logger = logging.getLogger(__name__)

KEYS = (DATE, CODE)
#: The part holding the interactions and z-scores (the other parts are named after their group).
DERIVED = "derived"
_F32_BYTES = 4
#: float32 copies of a block's cells alive at once while it is built (part slices, the
#: wide block, the z-scores, the selected output handed to the writer)
_COPIES_PER_BLOCK = 4


class FeatureSetMismatchError(ValueError):
    """The produced feature columns differ from the feature manifest."""


def day_blocks(day: np.ndarray, rows_per_block: int) -> list[tuple[int, int]]:
    """Row ranges [start, stop) of consecutive whole days, each about ``rows_per_block`` rows.

    Args:
        day: [rows] a day number of each row, non-decreasing (rows in Date order).
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


@dataclass(frozen=True)
class FramePart:
    """A part that is a frame: a group's Parquet file scanned (or its frame in memory).

    Attributes:
        name: the group (or ``derived`` when it is the written derived columns).
        frame: its feature columns, one row per key row, in the keys' order.
    """

    name: str
    frame: pl.LazyFrame

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", self.frame.collect_schema().names())  # a Parquet footer for a scan

    def read(self, start: int, stop: int, columns: Sequence[str]) -> pl.DataFrame:
        """Rows [start, stop) of ``columns`` (a Parquet scan reads only the row groups they fall in)."""
        return self.frame.select(columns).slice(start, stop - start).collect()


@dataclass(frozen=True)
class FeatureTable:
    """The features table as parts side by side, never one wide copy.

    Attributes:
        keys: Date, Code of every row, in (Date, Code) order.
        parts: the parts holding the feature columns, one row per key row, same order: a
            ``FramePart`` per group (its Parquet file) and, before it is written, the
            ``DerivedPart`` that computes the interactions and z-scores.
        names: the manifest's feature names: the table's column order after Date, Code.
        block_rows: rows per block of whole days when it is read (``rows_per_block``).
    """

    keys: pl.DataFrame
    parts: tuple[FramePart | DerivedPart, ...]
    names: tuple[str, ...]
    block_rows: int

    @property
    def height(self) -> int:
        return self.keys.height

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {DATE: pl.Date(), CODE: pl.String(), **{n: pl.Float32() for n in self.names}}

    def day_numbers(self) -> np.ndarray:
        """[rows] the day of each row (days since 1970), non-decreasing."""
        return self.keys.get_column(DATE).cast(pl.Int32).to_numpy()

    def bounds(self, columns: Sequence[str] | None = None) -> list[tuple[int, int]]:
        """Row ranges of the blocks (whole days) for reading ``columns`` (None: every feature).

        ``block_rows`` is sized for every feature; a read of fewer columns takes
        proportionally more rows per block (the same memory), so a long read of a few
        columns opens each file fewer times.
        """
        width = len(self.names) if columns is None else self.read_width(columns)
        return day_blocks(self.day_numbers(), self.block_rows * max(len(self.names), 1) // max(width, 1))

    def read_width(self, columns: Sequence[str]) -> int:
        """Feature columns held in memory to read ``columns`` (a derived column needs its inputs too)."""
        wanted = set(columns)
        width = 0
        for part in self.parts:
            chosen = sum(c in wanted for c in part.columns)
            if chosen and isinstance(part, DerivedPart):
                chosen = len(part.columns) + len(part.inputs())
            width += chosen
        return width

    def read(self, start: int, stop: int, columns: Sequence[str]) -> pl.DataFrame:
        """Rows [start, stop) (whole days) of ``columns`` (keys and features, any order), from their parts."""
        wanted = set(columns)
        pieces = [self.keys.slice(start, stop - start).select([c for c in KEYS if c in wanted])]
        for part in self.parts:
            chosen = [c for c in part.columns if c in wanted]
            if chosen:
                pieces.append(part.read(start, stop, chosen))
        return pl.concat([p for p in pieces if p.width], how="horizontal").select(columns)

    def lazy(self) -> pl.LazyFrame:
        """The table (Date, Code, the features in manifest order) as a block-wise LazyFrame.

        A query reads only the parts holding its columns, in blocks of whole days sized for
        those columns; a filter on Date and Code alone is evaluated on the keys first, so only
        the days with matching rows are read (a date range reads its own days). Collecting the
        whole frame builds the wide table in memory.
        """
        return register_io_source(_table_source(self), schema=self.schema, explain_name="feature_table")

    def collect(self) -> pl.DataFrame:
        """The whole table in memory (small markets and tests; a full universe does not fit)."""
        return self.lazy().collect()


def _table_source(table: FeatureTable) -> Callable[..., Iterator[pl.DataFrame]]:
    """The Polars IO source of ``FeatureTable.lazy`` (projection, Date/Code predicate and limit pushed down)."""
    everything = [*KEYS, *table.names]

    def source(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
    ) -> Iterator[pl.DataFrame]:
        wanted = list(with_columns) if with_columns is not None else everything
        needed = list(wanted) or [DATE]  # no column asked (a row count): the keys give the rows
        on_keys = None  # row numbers of the keys that pass a Date/Code predicate
        if predicate is not None:
            roots = predicate.meta.root_names()
            needed += [c for c in dict.fromkeys(roots) if c not in needed]
            if set(roots) <= set(KEYS):
                on_keys = table.keys.with_row_index("_row").filter(predicate).get_column("_row").to_numpy()
        day = table.day_numbers()
        produced = 0
        for start, stop in table.bounds(needed):  # a loop over blocks of days, each vectorised
            if n_rows is not None and produced >= n_rows:
                return
            if on_keys is not None:  # read only the whole days from the block's first to its last match
                lo, hi = np.searchsorted(on_keys, [start, stop])
                if lo == hi:
                    continue
                start = int(np.searchsorted(day, day[on_keys[lo]], side="left"))
                stop = int(np.searchsorted(day, day[on_keys[hi - 1]], side="right"))
            block = table.read(start, stop, needed)
            if predicate is not None:
                block = block.filter(predicate)
            block = block.select(wanted)
            if n_rows is not None:
                block = block.head(n_rows - produced)
            produced += block.height
            yield block

    return source


@dataclass(frozen=True)
class DerivedPart:
    """The interactions and z-scores, computed from the group columns they read, a block at a time.

    Attributes:
        groups: the table of the group parts (what the derived columns are computed from).
        interactions: the ``int_`` features (row-wise).
        zscores: the ``_csz`` features (per day, over the block's whole days).
        cross_sectional: their clip and minimum number of stocks.
    """

    groups: FeatureTable
    interactions: tuple[Feature, ...]
    zscores: tuple[Feature, ...]
    cross_sectional: CrossSectionalParams
    name: str = DERIVED

    @property
    def columns(self) -> list[str]:
        return [f.name for f in (*self.interactions, *self.zscores)]

    def inputs(self) -> list[str]:
        """The group columns the interactions and z-scores read (never the derived ones nor the keys)."""
        own = set(self.columns) | set(KEYS)
        roots = [r for f in self.interactions for r in f.expr.meta.root_names()]
        roots += [f.name[: -len(cross_sectional.SUFFIX)] for f in self.zscores]
        return [c for c in dict.fromkeys(roots) if c not in own]

    def read(self, start: int, stop: int, columns: Sequence[str]) -> pl.DataFrame:
        """The derived ``columns`` of rows [start, stop), which must be whole days."""
        wide = self.groups.read(start, stop, [*KEYS, *self.inputs()])
        if self.interactions:
            wide = wide.with_columns(to_float32(f.expr, f.name) for f in self.interactions)
        if self.zscores:
            day = self.groups.keys.get_column(DATE).slice(start, stop - start).cast(pl.Int32)
            wide = pl.concat([wide, cross_sectional.compute(wide, day, list(self.zscores), self.cross_sectional)],
                             how="horizontal")
        return wide.select(columns)


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


def assemble(
    keys: pl.DataFrame,
    manifest: FeatureManifest,
    enabled: dict[str, list[Feature]],
    group_names: Sequence[str],
    frames: Sequence[pl.DataFrame | pl.LazyFrame],
    cs_params: CrossSectionalParams,
    block_mib: int,
) -> FeatureTable:
    """The features table (Date, Code, the manifest's float32 features) as parts side by side.

    Every check that needs no values runs here, before anything is computed: each group's
    columns and height, the produced names against the manifest, float32 for every column.

    Args:
        keys: Date, Code in (Date, Code) order (``select_feature_keys``; other columns are ignored).
        manifest: the feature manifest (already checked against the params).
        enabled: group -> features that are on, including ``interactions`` and ``cross_sectional``.
        group_names: the data groups in the order of ``frames``.
        frames: the group nodes' outputs (eager or lazy), (Date, Code) order.
        cs_params: the cross-sectional z-score parameters.
        block_mib: MiB of float32 features per block (``assembly.block_mib``).

    Returns:
        The groups and, when interactions or z-scores are on, the ``derived`` part (computed
        block by block when it is read or written).

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
    block_rows = rows_per_block(len(manifest.names), block_mib)
    group_parts = tuple(FramePart(name, frame) for name, frame in groups)
    table = FeatureTable(keys=keys.select(KEYS), parts=group_parts, names=tuple(manifest.names),
                         block_rows=block_rows)
    if interactions or zscores:
        derived = DerivedPart(table, interactions, zscores, cs_params)
        table = FeatureTable(keys=table.keys, parts=(*group_parts, derived), names=table.names,
                             block_rows=block_rows)
    logger.info("features: %d rows x %d features in %d parts (%d group files + %d derived columns), "
                "read in blocks of whole days (%d MiB each)", keys.height, len(manifest.names),
                len(table.parts), len(groups), len(interactions) + len(zscores), block_mib)
    return table
