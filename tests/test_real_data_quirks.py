"""``kedro run --env test`` end to end on J-Quants-shaped files with the quirks of real data.

The test market's raw tables (from the simulator) are written as files for the ``files``
source, then made real-data-like:

* the calendar holds all four J-Quants holiday divisions: ``2`` (half-day session, a trading
  day) and ``3`` (derivatives-only holiday trading, closed for equities) besides 0 and 1;
* one stock does not trade for three days in a row: null O/H/L/C, volume and turnover 0;
* the margin-alert table (``/markets/margin-alert``) and the short-sale-report table
  (``/markets/short-sale-report``) are empty: header only.

The whole default pipeline must run, and the features must show the quirks as designed.
"""

from __future__ import annotations

import polars as pl
import pytest
from kedro_project import read_features

from atft_kedro.exchange_calendar import trading_days
from atft_kedro.labels import LabelParams
from atft_kedro.market.params import SimulatorParams
from atft_kedro.market.simulator import simulate_market
from atft_kedro.schemas.tables import TABLES_BY_RAW_NAME

pytestmark = pytest.mark.slow

GAP = (100, 101, 102)  # trading-day indices on which one stock does not trade
_PRICES = ("O", "H", "L", "C", "AdjO", "AdjH", "AdjL", "AdjC")
_VOLUMES = ("Vo", "Va", "AdjVo")


def quirky_raw_tables() -> tuple[dict[str, pl.DataFrame], dict]:
    """The test environment's raw tables with real-data quirks, and what was changed."""
    from kedro_project import load_conf

    conf = load_conf("test")["parameters"]
    raw = simulate_market(SimulatorParams(**conf["simulator"]), list(conf["horizons"]), LabelParams(**conf["labels"]))
    raw = {k: v for k, v in raw.items() if k in TABLES_BY_RAW_NAME}
    cal = raw["raw_trading_calendar"].sort("Date")
    days = trading_days(cal, column="HolDiv", table="raw_trading_calendar")
    half_days = days.gather([5, 60, 130])  # trading days with a half-day session
    closed = cal.filter((pl.col("HolDiv") == "0") & (pl.col("Date").dt.weekday() <= 5)
                        & pl.col("Date").is_between(days[10], days[-10])).get_column("Date").head(3)
    assert closed.len() > 0
    raw["raw_trading_calendar"] = cal.with_columns(
        pl.when(pl.col("Date").is_in(half_days.implode())).then(pl.lit("2"))
        .when(pl.col("Date").is_in(closed.implode())).then(pl.lit("3"))
        .otherwise(pl.col("HolDiv")).alias("HolDiv"))
    bars = raw["raw_daily_bars"]
    gap_days = days.gather(list(GAP))
    around = bars.filter(pl.col("Date").is_between(days[GAP[0] - 1], days[GAP[-1] + 1]))
    traded = around.group_by("Code").agg(pl.col("C").is_not_null().all() & (pl.len() == len(GAP) + 2))
    code = traded.filter(pl.col("C")).get_column("Code").sort()[0]
    off = (pl.col("Code") == code) & pl.col("Date").is_in(gap_days.implode())
    raw["raw_daily_bars"] = bars.with_columns(
        *[pl.when(off).then(None).otherwise(pl.col(c)).alias(c) for c in _PRICES],
        *[pl.when(off).then(0.0).otherwise(pl.col(c)).alias(c) for c in _VOLUMES])
    for name in ("raw_margin_alert", "raw_short_positions"):
        raw[name] = raw[name].clear()
    info = {"code": code, "days": days, "gap_days": gap_days, "half_days": half_days, "closed": closed,
            "bars": bars.filter(pl.col("Code") == code).sort("Date")}
    return raw, info


@pytest.fixture(scope="module")
def quirky_run(tmp_path_factory: pytest.TempPathFactory):
    from kedro_project import copy_project, data_root, kedro_run_test_env

    project = copy_project(tmp_path_factory.mktemp("quirks"))
    raw, info = quirky_raw_tables()
    folder = project / data_root("test") / "01_raw" / "jquants_files"
    folder.mkdir(parents=True)
    for name, frame in raw.items():
        frame.write_parquet(folder / f"{name}.parquet")
    output = kedro_run_test_env(project, "--params", "ingestion.source=files")
    return project / data_root("test"), output, info


def test_the_whole_default_pipeline_runs_and_reports(quirky_run) -> None:
    data, output, _ = quirky_run
    assert (data / "08_reporting" / "report.md").is_file()
    assert (data / "07_model_output" / "daily_ranking.parquet").is_file()
    for table in ("daily_margin_interest", "short_positions"):  # one feature-side warning each
        assert output.count(f"table '{table}' is empty (0 rows)") == 1, table


def test_half_days_trade_and_derivatives_only_holidays_do_not(quirky_run) -> None:
    data, _, info = quirky_run
    dates = read_features(data, ["Date"]).get_column("Date").unique()
    assert info["half_days"].is_in(dates.implode()).all()
    assert not info["closed"].is_in(dates.implode()).any()


def test_untraded_days_are_carried_in_features(quirky_run) -> None:
    data, _, info = quirky_run
    features = read_features(
        data, ["Date", "Code", "px_traded", "px_ret_1d", "px_volume_ratio_5d"])
    mine = features.filter(pl.col("Code") == info["code"]).sort("Date")
    gap = mine.filter(pl.col("Date").is_in(info["gap_days"].implode()))
    assert gap.height == len(GAP)
    assert gap.get_column("px_traded").to_list() == [0.0] * len(GAP)
    assert gap.get_column("px_ret_1d").to_list() == [0.0] * len(GAP)
    assert gap.get_column("px_volume_ratio_5d").to_list() == [0.0] * len(GAP)
    days, bars = info["days"], info["bars"]
    close = dict(bars.select("Date", "AdjC").iter_rows())
    after = mine.filter(pl.col("Date") == days[GAP[-1] + 1]).get_column("px_ret_1d")[0]
    assert after == pytest.approx(close[days[GAP[-1] + 1]] / close[days[GAP[0] - 1]] - 1.0, rel=1e-5)


def test_empty_optional_tables_cost_only_their_own_features(quirky_run) -> None:
    data, _, _ = quirky_run
    features = read_features(data)
    dmi = [c for c in features.columns if c.startswith("dmi_") and c != "dmi_valid"]
    pos = [c for c in features.columns if c.startswith("ss_pos_") and c != "ss_pos_valid"]
    assert dmi and pos
    assert (features.get_column("dmi_valid") == 0.0).all() and (features.get_column("ss_pos_valid") == 0.0).all()
    assert features.select(pl.col(dmi + pos).is_null().all()).row(0) == (True,) * len(dmi + pos)
    # the weekly margin balances and the sector short ratios come from other tables: still there
    assert features.get_column("mrg_valid").mean() > 0.5
    assert features.get_column("ss_valid").mean() > 0.5
