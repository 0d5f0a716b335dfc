"""Nodes of the feature pipeline: pure functions of canonical tables and typed params.

Each registered feature group (``features.registry``) has its own node, made by
``group_node``; a group that is off returns an empty frame. The
group frames are in (Date, Code) order, float32, and hold exactly the group's manifest
names. In a Kedro run each is a Parquet file (``fe_<group>_features``);
``assemble_features`` checks them against the manifest and returns the table as a
``FeatureTable``: the groups side by side plus the interactions and cross-sectional z-scores,
computed a block of whole trading days at a time (``features.assembly``); the ``features``
dataset writes those and refers to the group files for the rest.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Sequence

import polars as pl

from atft_kedro.features import assembly, graph
from atft_kedro.features.assembly import FeatureSetMismatchError, FeatureTable
from atft_kedro.features.manifest import DATA_GROUPS, build_feature_manifest, enabled_features
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.panel import build_stock_panel as _build_stock_panel
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import FeatureGroup
from atft_kedro.features.targets import build_targets as _build_targets
from atft_kedro.labels import LabelParams
from atft_kedro.schemas.manifest import FeatureManifest

logger = logging.getLogger(__name__)


def build_manifest(params: FeatureParams) -> FeatureManifest:
    """The feature manifest of ``params`` (saved as JSON by ``FeatureManifestDataset``)."""
    manifest = build_feature_manifest(params)
    logger.info("feature manifest: %d features, hash %s", len(manifest), manifest.hash[:12])
    return manifest


def build_stock_panel(
    daily_quotes: pl.DataFrame, listed_info: pl.DataFrame, trading_calendar: pl.DataFrame
) -> StockPanel:
    """One row per trading Date x listed Code with as-of sector and market (see ``features.panel``)."""
    panel = _build_stock_panel(daily_quotes, listed_info, trading_calendar)
    logger.info("stock panel: %d rows, %d codes", panel.height, panel.codes.len())
    return panel


def select_feature_keys(panel: StockPanel) -> pl.DataFrame:
    """Date and Code of every panel row, in (Date, Code) order.

    The assembly needs only these, so the panel can be released before it.
    """
    return panel.keys()


def build_targets(panel: StockPanel, horizons: list[int], labels: LabelParams) -> pl.DataFrame:
    """Tradable forward returns ``target_ret_{h}d`` (``atft_kedro.labels``) per (Date, Code), rows as ``features``."""
    return _build_targets(panel, horizons, labels)


def build_stock_graph(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """Correlation graph edges (Date, SourceCode, TargetCode, rho, same_sector, same_market)."""
    started = time.perf_counter()
    edges = graph.build_stock_graph(panel, params.graph)
    logger.info("stock graph: %d edges on %d days in %.1fs", edges.height,
                edges.get_column("Date").n_unique(), time.perf_counter() - started)
    return edges


def run_group(group: FeatureGroup, panel: StockPanel, sources: Sequence[pl.DataFrame | None],
              params: FeatureParams) -> pl.DataFrame:
    """Compute one group (or nothing if it is off), check its columns, put it in output order.

    Args:
        group: the registry entry.
        panel: the stock panel.
        sources: the tables named by ``group.sources``, in that order (None: missing).
        params: the feature params.

    Returns:
        The group's manifest columns in (Date, Code) order, one row per panel row; an empty
        frame when ``params.groups.<group>`` is false.

    Raises:
        FeatureSetMismatchError: ``group.compute`` returned other columns or another row count.
    """
    if not getattr(params.groups, group.name):
        return pl.DataFrame()
    started = time.perf_counter()
    frame = group.compute(panel, *sources, params)
    expected = [f.name for f in group.features(params)]
    if frame.columns != expected:
        missing = [n for n in expected if n not in frame.columns]
        extra = [n for n in frame.columns if n not in expected]
        raise FeatureSetMismatchError(
            f"feature group '{group.name}' produced {frame.width} columns, expected {len(expected)}: "
            f"missing {missing}, unexpected {extra}")
    if frame.height != panel.height:
        raise FeatureSetMismatchError(
            f"feature group '{group.name}' produced {frame.height} rows for a panel of {panel.height}")
    out = frame if group.row_order == "output" else panel.in_output_order(frame)
    logger.info("feature group %s: %d features in %.1fs", group.name, out.width, time.perf_counter() - started)
    return out


@functools.cache
def group_node(group: FeatureGroup) -> Callable[..., pl.DataFrame]:
    """The node function of one registered group: ``compute_<group>_features(panel, *sources, params)``.

    Its ``__name__`` is the node's name; its signature names the group's source tables and
    carries the types Kedro reads (``params: FeatureParams`` is validated from conf);
    ``__wrapped__`` is the group's ``compute`` (the code kedro-viz shows). One function per
    group (cached), also reachable as ``nodes.compute_<group>_features``, so it pickles by name.
    """
    signature = inspect.Signature([
        inspect.Parameter("panel", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=StockPanel),
        *[inspect.Parameter(s, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=pl.DataFrame)
          for s in group.sources],
        inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=FeatureParams),
    ], return_annotation=pl.DataFrame)

    def compute_group_features(*args: object, **kwargs: object) -> pl.DataFrame:
        bound = signature.bind(*args, **kwargs).arguments
        return run_group(group, bound["panel"], [bound[s] for s in group.sources], bound["params"])

    compute_group_features.__name__ = compute_group_features.__qualname__ = group.node_name
    compute_group_features.__doc__ = (
        f"{group.name}: {group.description} (feature group ``{group.name}``, see ``features.registry``).")
    compute_group_features.__signature__ = signature  # type: ignore[attr-defined]
    compute_group_features.__wrapped__ = group.compute  # type: ignore[attr-defined]
    compute_group_features.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()}, "return": pl.DataFrame}
    return compute_group_features


def __getattr__(name: str) -> Callable[..., pl.DataFrame]:
    """``compute_<group>_features``: the node function of a registered group (see ``group_node``)."""
    for group in DATA_GROUPS.values():
        if group.node_name == name:
            return group_node(group)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def assemble_features(
    feature_keys: pl.DataFrame,
    feature_manifest: FeatureManifest,
    params: FeatureParams,
    *group_frames: pl.DataFrame | pl.LazyFrame,
) -> FeatureTable:
    """Date, Code and every manifest feature (float32): the groups side by side plus the derived columns.

    Nothing is computed here but the checks: the result is a ``FeatureTable``, the keys and the
    group frames plus a ``derived`` part (interactions and cross-sectional z-scores) computed a
    block of whole trading days at a time (``features.assembly``). The ``features`` dataset writes
    the keys and the derived part and refers to the group files for the rest, so the wide table
    is never whole in memory nor written twice. ``.lazy()`` gives it as a LazyFrame, ``.collect()``
    in memory.

    Args:
        feature_keys: Date, Code in (Date, Code) order (``select_feature_keys``).
        feature_manifest: the manifest written by ``build_manifest``.
        params: the feature params the manifest came from (``assembly.block_mib``: block size).
        group_frames: the outputs of the group nodes, in ``DATA_GROUPS`` order: eager frames
            or LazyFrames (the ``fe_<group>_features`` Parquet files scanned).

    Raises:
        ManifestMismatchError: the manifest is not the one ``params`` describe.
        FeatureSetMismatchError: a group's columns or row count, or the produced columns,
            differ from the manifest.
    """
    feature_manifest.require_same(build_feature_manifest(params), "params:feature_engineering")
    on, _ = enabled_features(params)
    return assembly.assemble(feature_keys, feature_manifest, on, list(DATA_GROUPS), group_frames,
                             params.cross_sectional, params.assembly.block_mib)
