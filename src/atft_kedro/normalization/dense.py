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
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

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
    rows_by_date: RowsByDate, grid: DayStockGrid, names: list[str], days: slice, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the raw feature rows dated within ``days`` and prepare the cube they go into.

    Runs ahead in the reader thread, so the first touch of the output's fresh pages (the
    NaN fill) happens there too, while the main thread normalises the previous block.

    Args:
        rows_by_date: the features table; only rows dated within ``days`` are read.
        grid: the day x stock grid.
        names: the F feature names, in manifest order.
        days: a range of day indices of ``grid``.
        out: [D, N, F] the model input's features.

    Returns:
        positions [rows] int64 into the block's flattened [days * N] cells; values
        [rows, F] float32, NaN for null; the block's float32 cube [days, N, F], all NaN
        (``out[days]`` itself when ``out`` is float32, else a scratch array).
    """
    first, last = grid.dates[days.start].astype(object), grid.dates[days.stop - 1].astype(object)
    rows = rows_by_date.between(first, last, ["Date", "Code", *names])
    positions = grid.flat_positions(rows.select("Date", "Code")) - days.start * grid.shape[1]
    values = rows.select(names).to_numpy(order="c")
    del rows
    cube = out[days] if out.dtype == np.float32 else np.empty(out[days].shape, dtype=np.float32)
    cube.fill(np.nan)
    return positions, values, cube


def _write_days(
    out: np.ndarray,
    days: slice,
    positions: np.ndarray,
    values: np.ndarray,
    cube: np.ndarray,
    state: NormalizerState,
) -> None:
    """Scatter one day range's rows into its cube, normalise it and write 0 where missing.

    Args:
        out: [D, N, F] the model input's features; only ``out[days]`` is written.
        days: the day range.
        positions: [rows] flat cell of each row within the range's [days * N] cells.
        values: [rows, F] raw float32 features, NaN where missing.
        cube: [days, N, F] float32, all NaN; ``out[days]`` itself when ``out`` is float32.
        state: the fitted normalizer.
    """
    cube.reshape(-1, cube.shape[-1])[positions] = values
    normalize_cube_inplace(cube, state, slice(None))
    np.copyto(cube, np.float32(0.0), where=np.isnan(cube))
    if out.dtype != np.float32:
        out[days] = cube


def build_dense_model_input(
    features: FeatureFrame,
    targets: FeatureFrame,
    manifest: FeatureManifest,
    state: NormalizerState,
    params: NormalizationParams,
    horizons: tuple[int, ...],
) -> ModelInput:
    """Normalise the features with ``state`` and lay features, mask and targets out densely.

    Args:
        features: Date, Code, then the manifest's float32 features (eager or lazy).
        targets: Date, Code, ``target_ret_{h}d`` per horizon.
        manifest: the feature manifest the features follow.
        state: the fitted normalizer; it must come from the same manifest.
        params: ``dtype`` of the features array and ``block_mib``.
        horizons: target horizons in trading days.

    Returns:
        ``ModelInput``: features [D, N, F] ``params.dtype`` (0 where missing), mask [D, N],
        targets [D, N, H] float32 (NaN unknown), ascending dates and codes.
    """
    check_feature_frame(features, manifest)
    require_normalizer_matches(manifest, state)
    keys = read_keys(features, "features")
    grid = grid_of(keys)
    mask = unique_positions(grid.flat_positions(keys), grid, keys, "features").reshape(grid.shape)
    del keys
    d, n = grid.shape
    names = manifest.names
    out = np.empty((d, n, len(names)), dtype=np.dtype(params.dtype))
    rows_by_date = RowsByDate(features)
    # per day of a block, float32 copies of its cells: the collected rows and their array,
    # for this block and the one read ahead, plus normalisation scratch
    day_blocks = blocks(d, n * len(names) * _F32_BYTES * 6, params.block_mib)
    # Polars reads block b + 1 in a second thread while NumPy normalises block b.
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(_read_days, rows_by_date, grid, names, day_blocks[0], out)
        for b, days in enumerate(day_blocks):
            positions, values, cube = ahead.result()
            if b + 1 < len(day_blocks):
                ahead = reader.submit(_read_days, rows_by_date, grid, names, day_blocks[b + 1], out)
            _write_days(out, days, positions, values, cube, state)
            del positions, values, cube
    model_input = ModelInput(
        features=out,
        mask=mask,
        targets=dense_targets(targets, grid, mask, horizons),
        dates=grid.dates,
        codes=grid.codes,
        horizons=np.asarray(horizons, dtype=np.int64),
        feature_names=tuple(names),
        manifest_hash=manifest.hash,
    )
    logger.info(
        "model_input: %d days x %d stocks x %d features (%s), %.1f%% of cells filled, %.1f MiB",
        d, n, len(names), params.dtype, 100.0 * mask.mean() if mask.size else 0.0, out.nbytes / 2**20,
    )
    return model_input
