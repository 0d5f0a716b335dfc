"""Nodes of the feature pipeline: pure functions of canonical tables and typed params.

Each feature group has its own node; a group that is off returns an empty frame. The
group frames are in (Date, Code) order, float32, and hold exactly the group's manifest
names; ``assemble_features`` joins them side by side (no copy), adds interactions and
cross-sectional z-scores and checks the result against the manifest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import ModuleType

import polars as pl

from atft_kedro.features import (
    beta_alpha, cross_sectional, evt, flow, graph, grf, margin, margin_alert, mkt, px, sector, short,
    short_positions, stmt, tech,
)
from atft_kedro.features.base import DAY, to_float32
from atft_kedro.features.manifest import DATA_GROUPS, build_feature_manifest, enabled_features
from atft_kedro.features.panel import StockPanel
from atft_kedro.features.panel import build_stock_panel as _build_stock_panel
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.targets import build_targets as _build_targets
from atft_kedro.labels import LabelParams
from atft_kedro.schemas.manifest import FeatureManifest

logger = logging.getLogger(__name__)


class FeatureSetMismatchError(ValueError):
    """The produced feature columns differ from the feature manifest."""


def build_manifest(params: FeatureParams) -> dict:
    """The feature manifest of ``params`` as a JSON dict (``FeatureManifest.to_json_dict``)."""
    manifest = build_feature_manifest(params)
    logger.info("feature manifest: %d features, hash %s", len(manifest), manifest.hash[:12])
    return manifest.to_json_dict()


def build_stock_panel(
    daily_quotes: pl.DataFrame, listed_info: pl.DataFrame, trading_calendar: pl.DataFrame
) -> StockPanel:
    """One row per trading Date x listed Code with as-of sector and market (see ``features.panel``)."""
    panel = _build_stock_panel(daily_quotes, listed_info, trading_calendar)
    logger.info("stock panel: %d rows, %d codes", panel.height, panel.codes.len())
    return panel


def select_feature_keys(panel: StockPanel) -> pl.DataFrame:
    """Date, Code and the trading-day index ``_d`` of every panel row, in (Date, Code) order.

    The assembly needs only these, so the panel can be released before it.
    """
    return panel.keys().with_columns(panel.output_column(DAY))


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


def _run_group(panel: StockPanel, params: FeatureParams, module: ModuleType,
               compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Compute one group (or nothing if it is off), check its columns, put it in output order."""
    group = module.GROUP
    if not getattr(params.groups, group):
        return pl.DataFrame()
    started = time.perf_counter()
    frame = compute()
    expected = [f.name for f in module.features(params)]
    if frame.columns != expected:
        missing = [n for n in expected if n not in frame.columns]
        extra = [n for n in frame.columns if n not in expected]
        raise FeatureSetMismatchError(
            f"feature group '{group}' produced {frame.width} columns, expected {len(expected)}: "
            f"missing {missing}, unexpected {extra}")
    if frame.height != panel.height:
        raise FeatureSetMismatchError(
            f"feature group '{group}' produced {frame.height} rows for a panel of {panel.height}")
    out = frame if getattr(module, "ROW_ORDER", "panel") == "output" else panel.in_output_order(frame)
    logger.info("feature group %s: %d features in %.1fs", group, out.width, time.perf_counter() - started)
    return out


def compute_price_features(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """px_: returns, volatility, volume, liquidity, price location."""
    return _run_group(panel, params, px, lambda: px.compute(panel, params))


def compute_technical_features(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """tech_: RSI, MACD, Bollinger, ATR, ADX, stochastics, Williams %R, CCI, MFI."""
    return _run_group(panel, params, tech, lambda: tech.compute(panel, params))


def compute_market_features(panel: StockPanel, topix: pl.DataFrame, params: FeatureParams) -> pl.DataFrame:
    """mkt_: TOPIX returns, volatility, drawdown, trend, regime; breadth of the panel."""
    return _run_group(panel, params, mkt, lambda: mkt.compute(panel, topix, params))


def compute_beta_alpha_features(panel: StockPanel, topix: pl.DataFrame, params: FeatureParams) -> pl.DataFrame:
    """beta_/alpha_: rolling beta to TOPIX, residual returns, idiosyncratic volatility."""
    return _run_group(panel, params, beta_alpha, lambda: beta_alpha.compute(panel, topix, params))


def compute_sector_features(panel: StockPanel, params: FeatureParams) -> pl.DataFrame:
    """sec_: sector returns, the stock relative to and ranked within its as-of sector."""
    return _run_group(panel, params, sector, lambda: sector.compute(panel, params))


def compute_flow_features(panel: StockPanel, investor_types: pl.DataFrame, params: FeatureParams) -> pl.DataFrame:
    """flow_: weekly investor-type flows of the stock's market section."""
    return _run_group(panel, params, flow, lambda: flow.compute(panel, investor_types, params))


def compute_margin_features(panel: StockPanel, weekly_margin_interest: pl.DataFrame, params: FeatureParams
                            ) -> pl.DataFrame:
    """mrg_: weekly margin balances."""
    return _run_group(panel, params, margin, lambda: margin.compute(panel, weekly_margin_interest, params))


def compute_margin_alert_features(panel: StockPanel, daily_margin_interest: pl.DataFrame, params: FeatureParams
                                  ) -> pl.DataFrame:
    """dmi_: daily margin alerts."""
    return _run_group(panel, params, margin_alert, lambda: margin_alert.compute(panel, daily_margin_interest, params))


def compute_short_selling_features(panel: StockPanel, short_selling: pl.DataFrame, params: FeatureParams
                                   ) -> pl.DataFrame:
    """ss_sec_: sector short-selling ratios."""
    return _run_group(panel, params, short, lambda: short.compute(panel, short_selling, params))


def compute_short_position_features(panel: StockPanel, short_positions_table: pl.DataFrame, params: FeatureParams
                                    ) -> pl.DataFrame:
    """ss_pos_: reported short positions (``short_positions_table`` is the ``short_positions`` dataset)."""
    return _run_group(panel, params, short_positions,
                      lambda: short_positions.compute(panel, short_positions_table, params))


def compute_statement_features(panel: StockPanel, statements: pl.DataFrame, params: FeatureParams) -> pl.DataFrame:
    """stmt_: growth, margins, ROE, progress, revisions, surprise, valuation."""
    return _run_group(panel, params, stmt, lambda: stmt.compute(panel, statements, params))


def compute_earnings_event_features(
    panel: StockPanel, earnings_calendar: pl.DataFrame, statements: pl.DataFrame, params: FeatureParams
) -> pl.DataFrame:
    """evt_: days to the next / since the last earnings announcement."""
    return _run_group(panel, params, evt, lambda: evt.compute(panel, earnings_calendar, statements, params))


def compute_graph_features(panel: StockPanel, stock_graph: pl.DataFrame, params: FeatureParams) -> pl.DataFrame:
    """grf_: degree, centrality, clustering, neighbours' returns."""
    return _run_group(panel, params, grf, lambda: grf.compute(panel, stock_graph, params))


def assemble_features(
    feature_keys: pl.DataFrame,
    feature_manifest: dict,
    params: FeatureParams,
    *group_frames: pl.DataFrame,
) -> pl.DataFrame:
    """Date, Code and every manifest feature (float32), in manifest order.

    Args:
        feature_keys: Date, Code, ``_d`` in (Date, Code) order (``select_feature_keys``).
        feature_manifest: the manifest JSON dict written by ``build_manifest``.
        params: the feature params the manifest came from.
        group_frames: the outputs of the group nodes, in ``DATA_GROUPS`` order.

    Raises:
        ManifestMismatchError: the manifest is not the one ``params`` describe.
        FeatureSetMismatchError: the produced columns differ from the manifest's names.
    """
    manifest = FeatureManifest.from_json_dict(feature_manifest)
    manifest.require_same(build_feature_manifest(params), "params:feature_engineering")
    on, _ = enabled_features(params)
    if len(group_frames) != len(DATA_GROUPS):
        raise ValueError(f"assemble_features needs {len(DATA_GROUPS)} group frames, got {len(group_frames)}")
    for group, frame in zip(DATA_GROUPS, group_frames, strict=True):
        expected = [f.name for f in on[group]]
        if frame.columns != expected:
            raise FeatureSetMismatchError(
                f"feature group '{group}' delivered {frame.columns[:5]}... ({frame.width}) but the manifest "
                f"lists {expected[:5]}... ({len(expected)})")
    for group, frame in zip(DATA_GROUPS, group_frames, strict=True):
        if frame.width and frame.height != feature_keys.height:
            raise FeatureSetMismatchError(
                f"feature group '{group}' has {frame.height} rows, the panel {feature_keys.height}")
    wide = pl.concat([feature_keys.select("Date", "Code"), *[f for f in group_frames if f.width]],
                     how="horizontal")
    if on["interactions"]:
        wide = wide.with_columns(to_float32(f.expr, f.name) for f in on["interactions"])
    if on["cross_sectional"]:
        zscores = cross_sectional.compute(wide, feature_keys.get_column(DAY), on["cross_sectional"],
                                          params.cross_sectional)
        wide = pl.concat([wide, zscores], how="horizontal")
    produced = [c for c in wide.columns if c not in ("Date", "Code")]
    if sorted(produced) != sorted(manifest.names):
        raise FeatureSetMismatchError(
            f"features have {len(produced)} columns, the manifest lists {len(manifest)}: missing "
            f"{sorted(set(manifest.names) - set(produced))[:20]}, unexpected "
            f"{sorted(set(produced) - set(manifest.names))[:20]}")
    out = wide.select("Date", "Code", *manifest.names)
    bad_types = [c for c, t in out.schema.items() if c not in ("Date", "Code") and t != pl.Float32]
    if bad_types:
        raise FeatureSetMismatchError(f"features not float32: {bad_types[:20]}")
    logger.info("features: %d rows x %d features", out.height, out.width - 2)
    return out
