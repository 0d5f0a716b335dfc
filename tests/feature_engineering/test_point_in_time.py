"""Nothing from after the close of day t reaches a feature at t."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from fe_helpers import Built, build_all

from atft_kedro.features import calendar
from atft_kedro.features.panel import build_stock_panel
from atft_kedro.features.params import FeatureParams
from atft_kedro.schemas.tables import TABLES_BY_CANONICAL_NAME

#: column that dates each row, and whether rows dated on D itself are unknown at D's close
_DATED_BY = {
    "daily_quotes": ("Date", False),
    "topix": ("Date", False),
    "listed_info": ("Date", False),
    "statements": ("DisclosedDate", None),  # on D: unknown from the cut-off time on
    "investor_types": ("PublishedDate", True),
    "weekly_margin_interest": ("PublishedDate", True),
    "daily_margin_interest": ("PublishedDate", True),
    "short_selling": ("Date", True),
    "short_positions": ("DisclosedDate", True),
    "earnings_calendar": ("PublishedDate", True),
}


def _future_mask(name: str, frame: pl.DataFrame, day: dt.date) -> pl.Series:
    column, same_day_unknown = _DATED_BY[name]
    date = frame.get_column(column)
    if name == "statements":
        late = frame.get_column("DisclosedTime") >= "15:00:00"
        return (date > day) | ((date == day) & late)
    return (date >= day) if same_day_unknown else (date > day)


def poison(tables: dict[str, pl.DataFrame], day: dt.date, seed: int) -> dict[str, pl.DataFrame]:
    """Rewrite every value not known at the close of ``day`` (keys and dates kept, rows kept)."""
    rng = np.random.default_rng(seed)
    out = dict(tables)
    for name, (column, _) in _DATED_BY.items():
        frame = tables[name]
        future = _future_mask(name, frame, day)
        spec = TABLES_BY_CANONICAL_NAME[name]
        keep = set(spec.keys) | {column}
        changes = []
        for col in frame.columns:  # a loop over columns
            if col in keep:
                continue
            dtype = frame.schema[col]
            if dtype == pl.Float64:
                factor = pl.Series(rng.uniform(0.2, 5.0, frame.height))
                changes.append(pl.when(future).then(pl.col(col) * factor).otherwise(pl.col(col)).alias(col))
            elif dtype == pl.String and col in ("Sector33Code", "Sector17Code", "MarketCode"):
                other = frame.get_column(col).shuffle(seed=seed)
                changes.append(pl.when(future).then(other).otherwise(pl.col(col)).alias(col))
            elif dtype == pl.String and col in ("UpperLimit", "LowerLimit"):
                changes.append(pl.when(future).then(pl.lit("1")).otherwise(pl.col(col)).alias(col))
            elif dtype == pl.String and col == "DisclosedTime":  # still unknown at D: after the cut-off
                changes.append(pl.when(future).then(pl.lit("23:30:00")).otherwise(pl.col(col)).alias(col))
            elif dtype == pl.Date and col == "ScheduledDate":
                shift = pl.duration(days=pl.lit(3))
                changes.append(pl.when(future).then(pl.col(col) + shift).otherwise(pl.col(col)).alias(col))
        out[name] = frame.with_columns(changes) if changes else frame
    return out


def add_events_on(tables: dict[str, pl.DataFrame], day: dt.date) -> dict[str, pl.DataFrame]:
    """Copies of a few rows of every published table, published on ``day`` itself.

    Statements come at 15:00 and 16:00 (after the cut-off), so every "same day but after
    the close" path is exercised by the poisoning test.
    """
    out = dict(tables)
    codes = tables["daily_quotes"].filter(pl.col("Date") == day).get_column("Code").head(4)
    st = tables["statements"].filter(pl.col("Code").is_in(codes.implode())).group_by("Code").last()
    out["statements"] = pl.concat([tables["statements"], st.with_columns(
        pl.lit(day).alias("DisclosedDate"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("16:00:00")).otherwise(pl.lit("15:00:00"))
        .alias("DisclosedTime"),
        (pl.col("DisclosureNumber") + "-on-d").alias("DisclosureNumber"),
        (pl.col("NetSales") * 3.0).alias("NetSales")).select(tables["statements"].columns)])
    inv = tables["investor_types"].group_by("Section").last()
    out["investor_types"] = pl.concat([tables["investor_types"], inv.with_columns(
        pl.lit(day).alias("PublishedDate"), (pl.col("StartDate") + pl.duration(days=7)).alias("StartDate"),
    ).select(tables["investor_types"].columns)])
    wm = tables["weekly_margin_interest"].filter(pl.col("Code").is_in(codes.implode())).group_by("Code").last()
    out["weekly_margin_interest"] = pl.concat([tables["weekly_margin_interest"], wm.with_columns(
        pl.lit(day).alias("PublishedDate"), pl.lit(day).alias("Date")).select(
        tables["weekly_margin_interest"].columns)]).unique(["Date", "Code"], keep="last")
    dm = tables["daily_margin_interest"].head(2)
    out["daily_margin_interest"] = pl.concat([tables["daily_margin_interest"], dm.with_columns(
        pl.lit(day).alias("PublishedDate"), pl.Series("Code", codes.head(2))).select(
        tables["daily_margin_interest"].columns)]).unique(["PublishedDate", "Code"], keep="last")
    sp = tables["short_positions"].head(2)
    out["short_positions"] = pl.concat([tables["short_positions"], sp.with_columns(
        pl.lit(day).alias("DisclosedDate"), pl.Series("Code", codes.head(2))).select(
        tables["short_positions"].columns)]).unique(
        ["DisclosedDate", "CalculatedDate", "Code", "ShortSellerName"], keep="last")
    ec = tables["earnings_calendar"].head(2)
    out["earnings_calendar"] = pl.concat([tables["earnings_calendar"], ec.with_columns(
        pl.lit(day).alias("PublishedDate"), pl.Series("Code", codes.head(2)),
        pl.lit(day + dt.timedelta(days=3)).alias("ScheduledDate")).select(
        tables["earnings_calendar"].columns)]).unique(["PublishedDate", "Code", "ScheduledDate"], keep="last")
    return out


@pytest.fixture(scope="module")
def cutoff(tables: dict[str, pl.DataFrame]) -> dt.date:
    days = tables["daily_quotes"].get_column("Date").unique().sort()
    return days[200]


@pytest.fixture(scope="module")
def eventful(tables, cutoff) -> dict[str, pl.DataFrame]:
    """The test market plus publications on D itself (unknown at D's close)."""
    return add_events_on(tables, cutoff)


@pytest.fixture(scope="module")
def clean(eventful, feature_params: FeatureParams, horizons) -> Built:
    return build_all(eventful, feature_params, horizons)


@pytest.fixture(scope="module")
def poisoned(eventful, cutoff, feature_params: FeatureParams, horizons) -> Built:
    return build_all(poison(eventful, cutoff, seed=11), feature_params, horizons)


def test_poisoning_changes_the_future(clean: Built, poisoned: Built, cutoff: dt.date) -> None:
    """The poisoned tables really differ: features after D and targets reaching past D change."""
    after = pl.col("Date") > cutoff
    assert not clean.features.filter(after).equals(poisoned.features.filter(after))
    near = pl.col("Date").is_between(cutoff - dt.timedelta(days=10), cutoff)
    assert not clean.targets.filter(near).equals(poisoned.targets.filter(near))


def test_features_up_to_d_are_bit_identical_after_poisoning_the_future(
    clean: Built, poisoned: Built, cutoff: dt.date
) -> None:
    known = pl.col("Date") <= cutoff
    before, after = clean.features.filter(known), poisoned.features.filter(known)
    assert before.height > 0 and before.select("Date", "Code").equals(after.select("Date", "Code"))
    changed = [c for c in before.columns[2:] if not before.get_column(c).equals(after.get_column(c))]
    assert changed == []


def test_graph_up_to_d_is_identical_after_poisoning_the_future(
    clean: Built, poisoned: Built, cutoff: dt.date
) -> None:
    known = pl.col("Date") <= cutoff
    assert clean.graph.filter(known).height > 0
    assert clean.graph.filter(known).equals(poisoned.graph.filter(known))


def _weekday_holiday_after_trading_day(calendar_table: pl.DataFrame, first: dt.date, last: dt.date) -> dt.date:
    cal = calendar_table.sort("Date")
    closed = cal.filter(
        (pl.col("HolidayDivision") == "0") & (pl.col("Date").dt.weekday() <= 5)
        & (pl.col("HolidayDivision").shift(1) == "1") & pl.col("Date").is_between(first, last)
    )
    assert closed.height > 0, "the sample calendar has no weekday holiday after a trading day"
    return closed.get_column("Date")[0]


def _inject_statement(tables: dict, code: str, day: dt.date, time: str, sales: float) -> dict:
    statements = tables["statements"]
    template = statements.filter(pl.col("Code") == code).sort("DisclosedDate").tail(1)
    row = template.with_columns(
        pl.lit(day).alias("DisclosedDate"), pl.lit(time).alias("DisclosedTime"),
        pl.lit(f"{code}-injected").alias("DisclosureNumber"),
        pl.lit(sales).alias("NetSales"), pl.lit(sales * 0.5).alias("OperatingProfit"),
    )
    return {**tables, "statements": pl.concat([statements, row]).sort("DisclosureNumber")}


@pytest.mark.parametrize(("time", "same_day"), [("16:00:00", False), ("15:00:00", False), ("14:59:00", True)])
def test_statement_after_the_cutoff_before_a_holiday_counts_after_the_holiday(
    tables, feature_params: FeatureParams, horizons, time: str, same_day: bool
) -> None:
    days = tables["daily_quotes"].get_column("Date").unique().sort()
    holiday = _weekday_holiday_after_trading_day(tables["trading_calendar"], days[30], days[-30])
    eve = days.filter(days < holiday)[-1]
    first_after = days.filter(days > holiday)[0]
    code = tables["daily_quotes"].filter(pl.col("Date") == eve).get_column("Code")[0]
    features = build_all(_inject_statement(tables, code, eve, time, 1e12), feature_params, horizons).features
    margin = features.filter(pl.col("Code") == code).select("Date", "stmt_op_margin")
    shows = margin.filter((pl.col("stmt_op_margin") - 0.5).abs() < 1e-6).get_column("Date")
    assert shows.len() > 0
    assert shows.min() == (eve if same_day else first_after)
    assert first_after > holiday > eve


def test_calendar_helpers_skip_holidays_and_respect_the_cutoff() -> None:
    days = pl.Series("Date", [dt.date(2024, 5, d) for d in (1, 2, 7, 8)])  # 3-6 May closed
    dates = pl.Series([dt.date(2024, 5, 2), dt.date(2024, 5, 2), dt.date(2024, 5, 4), dt.date(2024, 5, 8)])
    times = pl.Series(["09:00:00", "15:00:00", "10:00:00", "18:00:00"])
    avail = calendar.statement_available_dates(dates, times, days, dt.time(15, 0))
    assert avail.to_list() == [dt.date(2024, 5, 2), dt.date(2024, 5, 7), dt.date(2024, 5, 7), None]
    published = calendar.published_available_dates(pl.Series([dt.date(2024, 5, 2), dt.date(2024, 5, 1)]), days, 2)
    assert published.to_list() == [dt.date(2024, 5, 8), dt.date(2024, 5, 7)]
    with pytest.raises(ValueError, match="DisclosedTime"):
        calendar.parse_disclosed_time(pl.Series(["25:61"]))
    with pytest.raises(ValueError, match="daily_quotes"):
        calendar.trading_day_index(pl.Series([dt.date(2024, 5, 3)]), days, "daily_quotes")


def test_listed_master_is_as_of_and_never_back_filled(tables) -> None:
    """A stock enters the panel on its first master row; a sector change applies from its row on."""
    quotes, info = tables["daily_quotes"], tables["listed_info"]
    days = quotes.get_column("Date").unique().sort()
    code = quotes.filter(pl.col("Date") == days[0]).get_column("Code")[0]
    start, switch = days[100], days[200]
    mine = info.filter(pl.col("Code") == code).head(1)
    old = mine.get_column("Sector33Code")[0]
    new = "9050" if old != "9050" else "0050"
    rows = pl.concat([
        mine.with_columns(pl.lit(start).alias("Date")),
        mine.with_columns(pl.lit(switch).alias("Date"), pl.lit(new).alias("Sector33Code")),
    ])
    master = pl.concat([info.filter(pl.col("Code") != code), rows])
    panel = build_stock_panel(quotes, master, tables["trading_calendar"])
    got = panel.frame.filter(pl.col("Code") == code)
    assert got.get_column("Date").min() == start
    assert got.height == quotes.filter((pl.col("Code") == code) & (pl.col("Date") >= start)).height
    assert set(got.filter(pl.col("Date") < switch).get_column("Sector33Code").to_list()) == {old}
    assert set(got.filter(pl.col("Date") >= switch).get_column("Sector33Code").to_list()) == {new}
