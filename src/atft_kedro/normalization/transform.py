"""Apply a fitted normalizer to a [days, stocks, features] cube whose missing cells are NaN.

In this order:

1. robust scale: ``(x - centre) / scale``, clipped to ``+-clip``; non-finite inputs are missing;
2. for features of the groups in ``cross_section.groups``: on each day with at least
   ``min_stocks`` valid stocks, ``(z - mean_day) / max(std_day, std_floor)``, clipped again.
   A day with fewer stocks keeps its robust-scaled values.

Missing cells stay NaN here (the model input writes them as 0 next to its mask).
"""

from __future__ import annotations

import numpy as np

from atft_kedro.normalization.state import NormalizerState


def robust_scale_inplace(values: np.ndarray, center: np.ndarray, scale: np.ndarray, clip: float) -> None:
    """``clip((values - center) / scale, -clip, clip)`` in place; non-finite inputs become NaN.

    Args:
        values: [..., k] float32, NaN where missing.
        center: [k] float32.
        scale: [k] float32, > 0.
        clip: the bound.
    """
    infinite = np.isinf(values)
    if infinite.any():
        np.copyto(values, np.float32(np.nan), where=infinite)
    del infinite
    np.subtract(values, center, out=values)
    np.divide(values, scale, out=values)
    np.clip(values, -clip, clip, out=values)


def standardize_cross_sections_inplace(
    cube: np.ndarray, min_stocks: int, std_floor: float, clip: float
) -> None:
    """Per day and feature, ``(z - mean) / max(std, std_floor)`` over the valid stocks, clipped; in place.

    Days with fewer than ``min_stocks`` valid stocks for a feature are left as they are.

    Args:
        cube: [D, N, k] float32, NaN where missing.
        min_stocks: the fewest valid stocks a day needs to be standardised.
        std_floor: the smallest standard deviation divided by.
        clip: the bound after standardising.
    """
    valid = ~np.isnan(cube)
    count = valid.sum(axis=1)  # [D, k]
    centred = np.where(valid, cube, np.float32(0.0))
    mean = centred.sum(axis=1, dtype=np.float64) / np.maximum(count, 1)  # [D, k]
    np.subtract(centred, mean[:, None, :].astype(np.float32), out=centred)
    centred[~valid] = 0.0
    var = np.einsum("dnk,dnk->dk", centred, centred, dtype=np.float64) / np.maximum(count, 1)
    del centred, valid
    enough = count >= min_stocks
    shift = np.where(enough, mean, 0.0).astype(np.float32)
    divisor = np.where(enough, np.maximum(np.sqrt(var), std_floor), 1.0).astype(np.float32)
    np.subtract(cube, shift[:, None, :], out=cube)
    np.divide(cube, divisor[:, None, :], out=cube)
    np.clip(cube, -clip, clip, out=cube)


def normalize_cube_inplace(cube: np.ndarray, state: NormalizerState, columns: slice) -> None:
    """Apply the normalizer to the features ``columns`` of the manifest, in place.

    Args:
        cube: [D, N, k] float32 raw features of those columns, NaN where missing.
        state: the fitted normalizer.
        columns: which features (manifest positions) the cube's last axis holds.
    """
    center = np.asarray(state.center[columns], dtype=np.float32)
    scale = np.asarray(state.scale[columns], dtype=np.float32)
    robust_scale_inplace(cube, center, scale, state.clip)
    flags = np.asarray(state.cross_section.standardized[columns], dtype=bool)
    if not flags.any():
        return
    cs = state.cross_section
    if flags.all():
        standardize_cross_sections_inplace(cube, cs.min_stocks, cs.std_floor, state.clip)
        return
    part = cube[:, :, flags]
    standardize_cross_sections_inplace(part, cs.min_stocks, cs.std_floor, state.clip)
    cube[:, :, flags] = part

