"""Assemble the dense ``ModelInput`` from the long features and targets tables.

Rows are placed by index arithmetic: each (Date, Code) row gets the flat grid position
``day_index * N + stock_index``, and a block of days is scattered into the [days, N, F]
slab with one NumPy fancy-index assignment of whole feature rows (no per-stock or per-row
loop). Blocks of consecutive trading days, sized by ``params.block_mib``, keep the working
memory beyond the output bounded; a day's cross-section always lies in one block, so the
per-day standardisation sees every stock. An eager features table sorted by Date is cut
into zero-copy slices; any other is filtered by date per block (a Date-ordered Parquet
scan skips the row groups outside the block). Polars reads the next block in a second
thread while NumPy normalises the current one.

The node's result is a ``ModelInputBlocks``: keys, mask and targets in memory (small) and
the [days, N, F] features still to be computed, block by block. ``ModelInputDataset``
writes each block to ``features.npy`` as it comes, so the whole dense features array is
never in memory; ``ModelInputBlocks.materialize()`` builds it in memory instead (inference,
tests).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from atft_kedro.normalization.frames import (
    DayStockGrid,
    FeatureFrame,
    RowsByDate,
    check_feature_frame,
    grid_of,
    read_keys,
    unique_positions,
)
from atft_kedro.normalization.params import NormalizationParams
from atft_kedro.normalization.robust import blocks
from atft_kedro.normalization.state import NormalizerState
from atft_kedro.normalization.transform import normalize_cube_inplace
from atft_kedro.schemas.manifest import FeatureManifest, ManifestMismatchError
from atft_kedro.schemas.model_input import ModelInput

logger = logging.getLogger(__name__)

_F32_BYTES = 4


def target_column(horizon: int) -> str:
    """The targets table's column for a horizon, e.g. ``target_ret_5d``."""
    return f"target_ret_{horizon}d"


def require_normalizer_matches(manifest: FeatureManifest, state: NormalizerState) -> None:
    """Raise ``ManifestMismatchError`` unless the normalizer was fitted on features of this manifest."""
    if manifest.hash == state.manifest_hash and tuple(manifest.names) == state.feature_names:
        return
    mine, theirs = manifest.names, list(state.feature_names)
    only_here = [n for n in mine if n not in set(theirs)]
    only_there = [n for n in theirs if n not in set(mine)]
    if only_here or only_there:
        detail = (
            f"{len(only_here)} features only in the manifest {only_here[:20]}, "
            f"{len(only_there)} only in the normalizer {only_there[:20]}"
        )
    elif mine != theirs:
        detail = "the same feature names in another order"
    else:
        detail = "the same feature names in the same order, but their specs (group, source, lag) differ"
    raise ManifestMismatchError(
        f"feature manifest {manifest.hash[:12]} differs from the manifest {state.manifest_hash[:12]} "
        f"that normalizer {state.identity[:12]} was fitted on ({state.fitted_on.start}..{state.fitted_on.end}): "
        f"{detail}. Refit the normalizer on the current features (kedro run --pipelines normalization)."
    )


def dense_targets(
    targets: FeatureFrame, grid: DayStockGrid, mask: np.ndarray, horizons: tuple[int, ...]
) -> np.ndarray:
    """Scatter the targets table onto the grid.

    Args:
        targets: Date, Code and ``target_ret_{h}d`` for each horizon (null where unknown).
        grid: the features' day x stock grid.
        mask: [D, N] bool, cells with a feature row.
        horizons: the H horizons, in output order.

    Returns:
        [D, N, H] float32, NaN where unknown, off the mask, or non-finite.
    """
    names = [target_column(h) for h in horizons]
    schema = targets.collect_schema()
    missing = [c for c in ("Date", "Code", *names) if c not in schema]
    if missing:
        raise ValueError(f"table targets lacks columns {missing} (params:horizons = {list(horizons)})")
    table = targets.lazy().select("Date", "Code", *names).collect()
    keys = table.select("Date", "Code")
    if keys.null_count().row(0) != (0, 0):
        raise ValueError("table targets: key columns Date/Code have nulls")
    flat = grid.flat_positions(keys)
    on_grid = flat >= 0
    if not on_grid.all():
        logger.info(
            "targets: %d of %d rows have no feature row (date or code outside the features) and are left out",
            int((~on_grid).sum()), flat.size,
        )
    unique_positions(flat[on_grid], grid, keys.filter(pl.Series(on_grid)), "targets")
    d, n = grid.shape
    out = np.full((d * n, len(horizons)), np.nan, dtype=np.float32)
    for j, name in enumerate(names):  # a loop over horizons
        values = table.get_column(name).cast(pl.Float32).to_numpy()
        out[flat[on_grid], j] = values[on_grid]
    out[~np.isfinite(out)] = np.nan
    out[~mask.ravel()] = np.nan
    return out.reshape(d, n, len(horizons))


def _read_days(
    rows_by_date: RowsByDate, grid: DayStockGrid, names: list[str], days: slice, out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the raw feature rows dated within ``days`` and prepare the cube they go into.

    Runs ahead in the reader thread, so the first touch of the cube's fresh pages (the NaN
    fill) happens there too, while the main thread normalises the previous block.

    Args:
        rows_by_date: the features table; only rows dated within ``days`` are read.
        grid: the day x stock grid.
        names: the F feature names, in manifest order.
        days: a range of day indices of ``grid``.
        out: [D, N, F] float32 features to fill in place, or None (a fresh cube per block).

    Returns:
        positions [rows] int64 into the block's flattened [days * N] cells; values
        [rows, F] float32, NaN for null; the block's float32 cube [days, N, F], all NaN
        (``out[days]`` itself when ``out`` is given, else a fresh array).
    """
    first, last = grid.dates[days.start].astype(object), grid.dates[days.stop - 1].astype(object)
    rows = rows_by_date.between(first, last, ["Date", "Code", *names])
    positions = grid.flat_positions(rows.select("Date", "Code")) - days.start * grid.shape[1]
    values = rows.select(names).to_numpy(order="c")
    del rows
    shape = (days.stop - days.start, grid.shape[1], len(names))
    cube = out[days] if out is not None else np.empty(shape, dtype=np.float32)
    cube.fill(np.nan)
    return positions, values, cube


def _normalize_days(positions: np.ndarray, values: np.ndarray, cube: np.ndarray, state: NormalizerState) -> None:
    """Scatter one day range's rows into its cube, normalise it and write 0 where missing.

    Args:
        positions: [rows] flat cell of each row within the range's [days * N] cells.
        values: [rows, F] raw float32 features, NaN where missing.
        cube: [days, N, F] float32, all NaN; written in place.
        state: the fitted normalizer.
    """
    cube.reshape(-1, cube.shape[-1])[positions] = values
    normalize_cube_inplace(cube, state, slice(None))
    np.copyto(cube, np.float32(0.0), where=np.isnan(cube))


@dataclass(frozen=True)
class FeatureBlockSource:
    """What computing the normalised features needs, and the blocks of days they come in.

    Attributes:
        features: the long features table (eager or lazy).
        grid: its day x stock grid.
        names: the F feature names, in manifest order.
        state: the fitted normalizer.
        day_blocks: consecutive day ranges covering every day, each within ``block_mib``.
    """

    features: FeatureFrame
    grid: DayStockGrid
    names: tuple[str, ...]
    state: NormalizerState
    day_blocks: tuple[slice, ...]

    def blocks(self, out: np.ndarray | None = None) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (days, normalised float32 cube [days, N, F]) for every block, in day order.

        Polars reads block b + 1 in a second thread while NumPy normalises block b.

        Args:
            out: [D, N, F] float32 to fill in place (each yielded cube is then ``out[days]``),
                or None: each block is a fresh array, dropped once the consumer lets go of it.
        """
        if not self.day_blocks:
            return
        rows_by_date = RowsByDate(self.features)
        names = list(self.names)
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead = reader.submit(_read_days, rows_by_date, self.grid, names, self.day_blocks[0], out)
            for b, days in enumerate(self.day_blocks):  # a loop over blocks of days, each vectorised
                positions, values, cube = ahead.result()
                if b + 1 < len(self.day_blocks):
                    ahead = reader.submit(_read_days, rows_by_date, self.grid, names, self.day_blocks[b + 1], out)
                _normalize_days(positions, values, cube, self.state)
                del positions, values
                yield days, cube
                del cube


@dataclass(frozen=True)
class ModelInputBlocks:
    """The dense model input whose [D, N, F] features are computed a block of days at a time.

    Everything but the features is in memory. ``ModelInputDataset`` saves it by writing each
    block of ``feature_blocks()`` to ``features.npy`` as it comes (never the whole array in
    memory); ``materialize()`` returns the in-memory ``ModelInput``. Both give the same
    numbers: each block is computed the same way whatever consumes it.

    Attributes:
        mask: [D, N] bool, True where a (Date, Code) row exists.
        targets: [D, N, H] float32, NaN where unknown.
        dates: [D] ``datetime64[D]`` ascending.
        codes: [N] str ascending.
        horizons: [H] int64.
        feature_names: the F names, in manifest order.
        manifest_hash: the manifest's hash.
        dtype: dtype of the features array (float32 or float16).
        source: computes the normalised float32 blocks.
    """

    mask: np.ndarray
    targets: np.ndarray
    dates: np.ndarray
    codes: np.ndarray
    horizons: np.ndarray
    feature_names: tuple[str, ...]
    manifest_hash: str
    dtype: np.dtype
    source: FeatureBlockSource

    @property
    def features_shape(self) -> tuple[int, int, int]:
        """(D, N, F) of the features array."""
        return (self.dates.size, self.codes.size, len(self.feature_names))

    def feature_blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """(days, features [days, N, F] in ``dtype``) for consecutive day ranges covering every day."""
        for days, cube in self.source.blocks():
            yield days, cube if cube.dtype == self.dtype else cube.astype(self.dtype)

    def materialize(self) -> ModelInput:
        """The whole ``ModelInput`` in memory (the features array built block by block in place)."""
        out = np.empty(self.features_shape, dtype=self.dtype)
        if self.dtype == np.float32:
            for _ in self.source.blocks(out):
                pass
        else:
            for days, cube in self.feature_blocks():
                out[days] = cube
        return ModelInput(
            features=out, mask=self.mask, targets=self.targets, dates=self.dates, codes=self.codes,
            horizons=self.horizons, feature_names=self.feature_names, manifest_hash=self.manifest_hash,
        )


def dense_model_input_blocks(
    features: FeatureFrame,
    targets: FeatureFrame,
    manifest: FeatureManifest,
    state: NormalizerState,
    params: NormalizationParams,
    horizons: tuple[int, ...],
) -> ModelInputBlocks:
    """Lay out mask and targets densely and plan the normalised features by blocks of days.

    Args:
        features: Date, Code, then the manifest's float32 features (eager or lazy).
        targets: Date, Code, ``target_ret_{h}d`` per horizon.
        manifest: the feature manifest the features follow.
        state: the fitted normalizer; it must come from the same manifest.
        params: ``dtype`` of the features array and ``block_mib``.
        horizons: target horizons in trading days.

    Returns:
        ``ModelInputBlocks``: mask [D, N], targets [D, N, H] float32 (NaN unknown), ascending
        dates and codes; the features [D, N, F] ``params.dtype`` (normalised, 0 where missing)
        are computed when its blocks are read (``feature_blocks`` / ``materialize``).
    """
    check_feature_frame(features, manifest)
    require_normalizer_matches(manifest, state)
    keys = read_keys(features, "features")
    grid = grid_of(keys)
    mask = unique_positions(grid.flat_positions(keys), grid, keys, "features").reshape(grid.shape)
    del keys
    d, n = grid.shape
    names = tuple(manifest.names)
    # per day of a block, float32 copies of its cells: the collected rows and their array,
    # for this block and the one read ahead, plus normalisation scratch
    day_blocks = blocks(d, n * len(names) * _F32_BYTES * 6, params.block_mib)
    model_input = ModelInputBlocks(
        mask=mask,
        targets=dense_targets(targets, grid, mask, horizons),
        dates=grid.dates,
        codes=grid.codes,
        horizons=np.asarray(horizons, dtype=np.int64),
        feature_names=names,
        manifest_hash=manifest.hash,
        dtype=np.dtype(params.dtype),
        source=FeatureBlockSource(features=features, grid=grid, names=names, state=state,
                                  day_blocks=tuple(day_blocks)),
    )
    logger.info(
        "model_input: %d days x %d stocks x %d features (%s), %.1f%% of cells filled, %.1f MiB, "
        "in %d blocks of days", d, n, len(names), params.dtype, 100.0 * mask.mean() if mask.size else 0.0,
        d * n * len(names) * np.dtype(params.dtype).itemsize / 2**20, len(day_blocks),
    )
    return model_input

