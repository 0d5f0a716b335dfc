"""Nothing from after the close of day D reaches a feature at a date <= D.

The main check builds every feature twice: on a market ("clean") and on the same market
whose every row not known at D's close has been rewritten ("poisoned"): every column of
every table changed (values, types, period dates, publication dates, sectors, untraded
days), rows added (a stock listed after D, extra publications) and rows removed (a stock
delisted after D, random rows). Features at dates <= D must be bit-identical.

That check is only worth something if it can fail, so this module also shows that

* every feature has values in the days just before D (a comparison of nulls proves nothing);
* a one-day look-ahead in any single feature, and one planted in each feature group's
  node in turn, makes the check fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest
from fe_helpers import Built, build_all
from kedro_project import load_conf
from sample_tables import make_canonical_tables

from atft_kedro.features import calendar, cross_sectional, interactions
from atft_kedro.features.panel import build_stock_panel
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import DATA_GROUPS, FeatureGroup, group_order
from atft_kedro.labels import LabelParams
from atft_kedro.market import simulator
from atft_kedro.market.params import SimulatorParams
from atft_kedro.schemas.tables import TABLES_BY_CANONICAL_NAME, TABLES_BY_RAW_NAME

N_STOCKS, N_DAYS, SEED, N_SECTORS = 24, 290, 5, 4
#: D's index among the trading days. D+1 is a graph day (first day + window - 1 + 20 j), so
#: a look-ahead in the graph features shows the next graph, and D leaves room for the
#: 250-day market regime z-score and the 52-week flow and margin z-scores.
CUTOFF_INDEX = 258
NEW_CODE = "10000"  # sorts before every code: the codes of the panel all move one place

#: column that dates each row (when it becomes known), and whether a row dated D is unknown
#: at D's close (published tables count from the next trading day: every lag is 1 in conf)
_DATED_BY = {
    "trading_calendar": ("Date", False),
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
#: dating columns that must stay where they are (rows on trading days; the panel's own days)
_FIXED_DATES = {"trading_calendar", "daily_quotes", "topix"}
_QUOTE_PRICES = ("Open", "High", "Low", "Close", "AdjustmentOpen", "AdjustmentHigh", "AdjustmentLow",
                 "AdjustmentClose")
_QUOTE_VOLUMES = ("Volume", "TurnoverValue", "AdjustmentVolume")


def future_mask(name: str, frame: pl.DataFrame, day: dt.date) -> pl.Series:
    """True for the rows of ``frame`` that are not known at the close of ``day``."""
    column, same_day_unknown = _DATED_BY[name]
    date = frame.get_column(column)
    if name == "statements":
        late = calendar.parse_disclosed_time(frame.get_column("DisclosedTime")) >= dt.time(15, 0)
        return (date > day) | ((date == day) & late)
    return (date >= day) if same_day_unknown else (date > day)


def _changed_column(name: str, col: str, fut: pl.DataFrame, whole: pl.DataFrame, rng: np.random.Generator,
                    day: dt.date) -> pl.Series:
    """A new version of column ``col`` for the future rows ``fut`` (every value differs or moves)."""
    n = fut.height
    values = fut.get_column(col)
    dtype = values.dtype
    dating = _DATED_BY[name][0]
    if dtype == pl.Float64:
        base = values.fill_null(pl.Series(rng.uniform(1.0, 100.0, n)))
        out = base * pl.Series(rng.uniform(0.2, 5.0, n))
        return out.scatter(np.flatnonzero(rng.random(n) < 0.05), None)
    if dtype == pl.Date:
        if col == dating:  # published later still: stays unknown at D
            return (values.cast(pl.Int32) + pl.Series(rng.integers(0, 4, n), dtype=pl.Int32)).cast(pl.Date)
        base = values.fill_null(day)
        return (base.cast(pl.Int32) + pl.Series(rng.integers(-120, 121, n), dtype=pl.Int32)).cast(pl.Date)
    if col == "HolidayDivision":  # same trading status, the other J-Quants division
        return values.replace_strict({"0": "3", "1": "2", "2": "1", "3": "0"})
    if col == "DisclosedTime":
        late = fut.get_column("DisclosedDate") == day  # still after the cut-off: still unknown at D
        early = pl.Series(np.array(["08:00:00", "11:30:00", "13:00"])[rng.integers(0, 3, n)])
        return pl.select(pl.when(late).then(pl.lit("17:45:00")).otherwise(early)).to_series()
    others = whole.get_column(col).drop_nulls().unique().sort()
    if others.len() < 2:  # a constant (or all-null) column: a value it never takes
        return pl.Series([f"poison-{i % 3}" for i in range(n)])
    picked = others.gather(rng.integers(0, others.len(), n))
    return pl.select(pl.when(picked == values).then(others.gather(
        (others.search_sorted(values) + 1) % others.len())).otherwise(picked)).to_series()


def identity_columns(name: str) -> set[str]:
    """Columns :func:`rewrite_rows` keeps: what the row is about (the stock, the statement) and
    the dates of the quote, TOPIX and calendar rows (moving those is adding and removing rows)."""
    return {"Code", "DisclosureNumber"} | ({"Date"} if name in _FIXED_DATES else set())


def rewrite_rows(name: str, fut: pl.DataFrame, whole: pl.DataFrame, rng: np.random.Generator,
                 day: dt.date) -> pl.DataFrame:
    """``fut`` (rows of table ``name`` unknown at D) with every other column rewritten, same rows."""
    keep = identity_columns(name)
    return fut.with_columns(
        _changed_column(name, c, fut, whole, rng, day).alias(c) for c in whole.columns if c not in keep)


def poison(tables: dict[str, pl.DataFrame], day: dt.date, seed: int) -> dict[str, pl.DataFrame]:
    """Rewrite, add and remove every kind of row not known at the close of ``day``."""
    rng = np.random.default_rng(seed)
    out: dict[str, pl.DataFrame] = {}
    days = calendar.trading_days(tables["trading_calendar"])
    for name, frame in tables.items():
        spec = TABLES_BY_CANONICAL_NAME[name]
        future = future_mask(name, frame, day)
        past, fut = frame.filter(~future), frame.filter(future)
        fut = rewrite_rows(name, fut, frame, rng, day)
        if name == "daily_quotes":  # untraded future days, a stock delisted after D, a new one listed
            untraded = pl.Series(rng.random(fut.height) < 0.05)
            fut = fut.with_columns(
                *[pl.when(untraded).then(None).otherwise(pl.col(c)).alias(c) for c in _QUOTE_PRICES],
                *[pl.when(untraded).then(0.0).otherwise(pl.col(c)).alias(c) for c in _QUOTE_VOLUMES])
            gone = past.get_column("Code").unique().sort()[0]
            newcomer = fut.filter(pl.col("Code") == fut.get_column("Code").unique().sort()[-1]).with_columns(
                pl.lit(NEW_CODE).alias("Code"))
            fut = pl.concat([fut.filter(pl.col("Code") != gone), newcomer])
        elif name == "listed_info":
            listing = past.tail(1).with_columns(pl.lit(NEW_CODE).alias("Code"),
                                                pl.lit(days.filter(days > day)[0]).alias("Date"))
            fut = pl.concat([fut, listing])
        elif name not in _FIXED_DATES:  # extra rows: copies published a few days later
            extra = fut.sample(fraction=0.1, seed=seed).with_columns(
                (pl.col(_DATED_BY[name][0]).cast(pl.Int32) + 5).cast(pl.Date))
            if name == "statements":
                extra = extra.with_columns(pl.col("DisclosureNumber") + "-x")
            fut = pl.concat([fut, extra])
        if name == "trading_calendar":  # days after the last quote can go, more days come
            last_quote = tables["daily_quotes"].get_column("Date").max()
            fut = fut.filter((pl.col("Date") <= last_quote) | pl.Series(rng.random(fut.height) < 0.5))
            end = frame.get_column("Date").max()
            more = pl.date_range(end + dt.timedelta(days=1), end + dt.timedelta(days=20), eager=True)
            fut = pl.concat([fut, pl.DataFrame({"Date": more, "HolidayDivision": pl.Series(
                np.where(more.dt.weekday().to_numpy() >= 6, "0", "1"))})])
        else:
            fut = fut.filter(pl.Series(rng.random(fut.height) >= 0.1))  # rows removed
        # past rows win any key collision, so nothing known at D is lost
        out[name] = pl.concat([past, fut]).unique(list(spec.keys), keep="first", maintain_order=True)
    return out


def add_events_on(tables: dict[str, pl.DataFrame], day: dt.date) -> dict[str, pl.DataFrame]:
    """Publications on ``day`` itself (unknown at its close) and a listed-master snapshot on D+1.

    Statements come at 15:00 and 16:00 (after the cut-off), so every "same day but after
    the close" path is exercised by the poisoning test; a master snapshot of every stock on
    D+1 lets a look-ahead in the sector features show.
    """
    out = dict(tables)
    days = calendar.trading_days(tables["trading_calendar"])
    codes = tables["daily_quotes"].filter(pl.col("Date") == day).get_column("Code").head(8)
    st = tables["statements"].filter(pl.col("Code").is_in(codes.implode())).group_by("Code").last()
    out["statements"] = pl.concat([tables["statements"], st.with_columns(
        pl.lit(day).alias("DisclosedDate"),
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("16:00:00")).otherwise(pl.lit("15:00:00"))
        .alias("DisclosedTime"),
        pl.lit("FY").alias("TypeOfCurrentPeriod"),
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
    dm = tables["daily_margin_interest"].head(4)
    before = days.filter(days < day).tail(3)  # alerts are rare: some active in the days before D too
    out["daily_margin_interest"] = pl.concat([tables["daily_margin_interest"], *[dm.with_columns(
        pl.lit(d).alias("PublishedDate"), pl.Series("Code", codes.head(4))).select(
        tables["daily_margin_interest"].columns) for d in [*before, day]]]).unique(["PublishedDate", "Code"], keep="last")
    sp = tables["short_positions"].head(4)
    out["short_positions"] = pl.concat([tables["short_positions"], sp.with_columns(
        pl.lit(day).alias("DisclosedDate"), pl.Series("Code", codes.head(4))).select(
        tables["short_positions"].columns)]).unique(
        ["DisclosedDate", "CalculatedDate", "Code", "ShortSellerName"], keep="last")
    ec = tables["earnings_calendar"].head(4)
    out["earnings_calendar"] = pl.concat([tables["earnings_calendar"], ec.with_columns(
        pl.lit(day).alias("PublishedDate"), pl.Series("Code", codes.head(4)),
        pl.lit(day + dt.timedelta(days=3)).alias("ScheduledDate")).select(
        tables["earnings_calendar"].columns)]).unique(["PublishedDate", "Code", "ScheduledDate"], keep="last")
    info = tables["listed_info"]
    snapshot = info.filter(pl.col("Date") <= day).group_by("Code").last().with_columns(
        pl.lit(days.filter(days > day)[0]).alias("Date"))
    out["listed_info"] = pl.concat([info, snapshot.select(info.columns)]).unique(["Date", "Code"], keep="first")
    return out


def pit_market() -> dict[str, pl.DataFrame]:
    """The test market, its calendar starting on the first quote day and holding 2s and 3s.

    So every statement disclosed earlier (a year of history) becomes known on the
    calendar's first day: many statements of one company available the same day.
    """
    tables = make_canonical_tables(N_STOCKS, N_DAYS, SEED, n_sectors=N_SECTORS)
    first = tables["daily_quotes"].get_column("Date").min()
    cal = tables["trading_calendar"].filter(pl.col("Date") >= first)
    # all four J-Quants divisions: half-day sessions (2) trade, derivatives-only holidays (3) do not
    every_40th = (pl.int_range(pl.len()) % 40 == 7)
    tables["trading_calendar"] = cal.with_columns(
        pl.when(every_40th & (pl.col("HolidayDivision") == "1")).then(pl.lit("2"))
        .when(every_40th & (pl.col("HolidayDivision") == "0")).then(pl.lit("3"))
        .otherwise(pl.col("HolidayDivision")).alias("HolidayDivision"))
    return tables


@pytest.fixture(scope="module")
def market() -> dict[str, pl.DataFrame]:
    return pit_market()


@pytest.fixture(scope="module")
def cutoff(market: dict[str, pl.DataFrame]) -> dt.date:
    return market["daily_quotes"].get_column("Date").unique().sort()[CUTOFF_INDEX]


@pytest.fixture(scope="module")
def eventful(market, cutoff) -> dict[str, pl.DataFrame]:
    """The test market plus publications on D itself (unknown at D's close)."""
    return add_events_on(market, cutoff)


@pytest.fixture(scope="module")
def poisoned_tables(eventful, cutoff) -> dict[str, pl.DataFrame]:
    return poison(eventful, cutoff, seed=11)


@pytest.fixture(scope="module")
def clean(eventful, feature_params: FeatureParams, horizons) -> Built:
    return build_all(eventful, feature_params, horizons)


@pytest.fixture(scope="module")
def poisoned(poisoned_tables, feature_params: FeatureParams, horizons) -> Built:
    return build_all(poisoned_tables, feature_params, horizons)


def changed_features(clean: pl.DataFrame, poisoned: pl.DataFrame, cutoff: dt.date) -> list[str]:
    """The poisoning check: features whose values at dates <= D differ (bit for bit, nulls included)."""
    known = pl.col("Date") <= cutoff
    before, after = clean.filter(known), poisoned.filter(known)
    assert before.height > 0 and before.select("Date", "Code").equals(after.select("Date", "Code"))
    return [c for c in before.columns[2:] if not before.get_column(c).equals(after.get_column(c))]


def test_the_lags_of_conf_are_the_ones_this_module_assumes(feature_params: FeatureParams) -> None:
    lags = feature_params.availability.model_dump()
    assert {k: v for k, v in lags.items() if k.endswith("_lag_days")} == {
        k: 1 for k in lags if k.endswith("_lag_days")}
    assert feature_params.availability.statement_cutoff_time == dt.time(15, 0)


def test_every_feature_has_values_in_the_days_before_the_cutoff(clean: Built, cutoff: dt.date) -> None:
    """A comparison of nulls could not fail: every feature is non-null on some of D-19 .. D."""
    days = clean.features.get_column("Date").unique().sort()
    recent = clean.features.filter(pl.col("Date").is_between(days.filter(days <= cutoff)[-20], cutoff))
    counts = recent.select(pl.all().exclude("Date", "Code").count()).row(0, named=True)
    assert [name for name, n in counts.items() if n == 0] == []


def test_poison_rewrites_every_column_of_every_table_and_adds_and_removes_rows(
    eventful, poisoned_tables, cutoff
) -> None:
    rng = np.random.default_rng(3)
    for name, frame in eventful.items():
        spec = TABLES_BY_CANONICAL_NAME[name]
        future = future_mask(name, frame, cutoff)
        before = frame.filter(future)
        rewritten = rewrite_rows(name, before, frame, rng, cutoff)
        assert before.height > 0, name
        share = {c: before.select((~pl.col(c).eq_missing(rewritten.get_column(c))).mean()).item()
                 for c in frame.columns if c not in identity_columns(name)}
        assert {c: v for c, v in share.items() if v < 0.5} == {}, f"{name}: columns barely changed"
        after = poisoned_tables[name].filter(future_mask(name, poisoned_tables[name], cutoff))
        past_after = poisoned_tables[name].filter(~future_mask(name, poisoned_tables[name], cutoff))
        assert past_after.equals(frame.filter(~future)), name  # what is known at D stays
        keys = list(spec.keys)
        assert before.join(after, on=keys, how="anti").height > 0, f"{name}: no row removed"
        if name != "topix":  # TOPIX has a row on every trading day already
            assert after.join(before, on=keys, how="anti").height > 0, f"{name}: no row added"
    quotes = poisoned_tables["daily_quotes"].filter(pl.col("Date") > cutoff)
    assert quotes.get_column("Close").null_count() > eventful["daily_quotes"].filter(
        pl.col("Date") > cutoff).get_column("Close").null_count()
    assert NEW_CODE in quotes.get_column("Code").to_list()


def test_poisoning_changes_the_future(clean: Built, poisoned: Built, cutoff: dt.date) -> None:
    """The poisoned tables really differ: features after D and targets reaching past D change."""
    after = pl.col("Date") > cutoff
    assert not clean.features.filter(after).equals(poisoned.features.filter(after))
    near = pl.col("Date").is_between(cutoff - dt.timedelta(days=10), cutoff)
    assert not clean.targets.filter(near).equals(poisoned.targets.filter(near))


def test_features_up_to_d_are_bit_identical_after_poisoning_the_future(
    clean: Built, poisoned: Built, cutoff: dt.date
) -> None:
    assert changed_features(clean.features, poisoned.features, cutoff) == []


def test_graph_up_to_d_is_identical_after_poisoning_the_future(
    clean: Built, poisoned: Built, cutoff: dt.date
) -> None:
    known = pl.col("Date") <= cutoff
    assert clean.graph.filter(known).height > 0
    assert clean.graph.filter(known).equals(poisoned.graph.filter(known))


def _one_day_ahead(features: pl.DataFrame) -> pl.DataFrame:
    """Every feature at t replaced by the stock's value on its next row (a one-day look-ahead)."""
    return features.with_columns(pl.all().exclude("Date", "Code").shift(-1).over("Code"))


def test_a_one_day_look_ahead_in_any_single_feature_fails_the_check(
    clean: Built, poisoned: Built, cutoff: dt.date
) -> None:
    """For each feature alone: showing its next-day value at t would be caught."""
    leaked_clean, leaked_poisoned = _one_day_ahead(clean.features), _one_day_ahead(poisoned.features)
    caught = set(changed_features(leaked_clean, leaked_poisoned, cutoff))
    assert [n for n in clean.features.columns[2:] if n not in caught] == []


def _leaky_group(group: FeatureGroup) -> FeatureGroup:
    """``group`` whose compute has a one-day look-ahead: each row gets the stock's next row."""
    original = group.compute

    def compute(panel, *args):
        out = original(panel, *args)
        output_order = group.row_order == "output"
        code = panel.output_column("Code") if output_order else panel.frame.get_column("Code")
        return out.with_columns(code.alias("_leak_code")).select(
            pl.all().exclude("_leak_code").shift(-1).over("_leak_code"))

    return dataclasses.replace(group, compute=compute)




@pytest.mark.parametrize("group", group_order())
def test_a_look_ahead_planted_in_each_group_fails_the_check(
    group: str, eventful, poisoned_tables, cutoff, feature_params: FeatureParams, horizons,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if group in DATA_GROUPS:
        monkeypatch.setitem(DATA_GROUPS, group, _leaky_group(DATA_GROUPS[group]))
    elif group == interactions.GROUP:
        original = interactions.interaction_expr
        monkeypatch.setattr(interactions, "interaction_expr",
                            lambda spec: original(spec).shift(-1).over("Code"))
    else:
        original_csz = cross_sectional.compute

        def leaky_csz(frame, day, features, params):
            out = original_csz(frame, day, features, params)
            return out.with_columns(frame.get_column("Code").alias("_c")).select(
                pl.all().exclude("_c").shift(-1).over("_c"))

        monkeypatch.setattr(cross_sectional, "compute", leaky_csz)
    leaky_clean = build_all(eventful, feature_params, horizons)
    leaky_poisoned = build_all(poisoned_tables, feature_params, horizons)
    manifest = leaky_clean.manifest
    mine = {f.name for f in manifest.features if f.group == group}
    changed = changed_features(leaky_clean.features, leaky_poisoned.features, cutoff)
    assert changed, f"a look-ahead in group {group} went unnoticed"
    assert set(changed) & mine


# ---- ties: statements of one company known the same day --------------------------------------

def _statement(template: pl.DataFrame, day: dt.date, time: str, number: str, op_margin: float,
               forecast_op: float) -> pl.DataFrame:
    return template.with_columns(
        pl.lit(day).alias("DisclosedDate"), pl.lit(time).alias("DisclosedTime"),
        pl.lit(number).alias("DisclosureNumber"), pl.lit(1e12).alias("NetSales"),
        pl.lit(1e12 * op_margin).alias("OperatingProfit"), pl.lit(forecast_op).alias("ForecastOperatingProfit"))


@pytest.mark.parametrize(("loser", "winner"), [
    # disclosed the evening before vs the morning of the day: the later disclosure wins
    (("prev", "16:00:00", "Z-9"), ("day", "09:30:00", "A-1")),
    # same day: the later time wins, whatever the numbers
    (("day", "09:00:00", "Z-9"), ("day", "10:00", "A-1")),
    # same day and time: the larger DisclosureNumber wins
    (("day", "10:00:00", "A-1"), ("day", "10:00:00", "A-2")),
])
def test_statements_known_the_same_day_follow_the_tie_rule_not_the_row_order(
    tables, feature_params: FeatureParams, horizons, loser, winner
) -> None:
    days = tables["daily_quotes"].get_column("Date").unique().sort()
    day, prev = days[150], days[149]
    code = tables["daily_quotes"].filter(pl.col("Date") == day).get_column("Code")[0]
    st = tables["statements"]
    template = st.filter((pl.col("Code") == code) & (pl.col("DisclosedDate") < prev)).sort("DisclosedDate").tail(1)
    when = {"day": day, "prev": prev}
    rows = [_statement(template, when[loser[0]], loser[1], f"{code}-{loser[2]}", 0.1, 4e11),
            _statement(template, when[winner[0]], winner[1], f"{code}-{winner[2]}", 0.3, 6e11)]
    outs = []
    for order in (rows, rows[::-1]):
        built = build_all({**tables, "statements": pl.concat([st, *order])}, feature_params, horizons)
        outs.append(built.features)
    assert outs[0].equals(outs[1])
    got = outs[0].filter((pl.col("Code") == code) & (pl.col("Date") == day)).row(0, named=True)
    assert got["stmt_op_margin"] == pytest.approx(0.3, rel=1e-6)
    assert got["stmt_progress_op"] == pytest.approx(3e11 / 6e11, rel=1e-6)


def test_statements_before_the_calendar_and_row_order_do_not_move_features(
    market, feature_params: FeatureParams, horizons
) -> None:
    """Dozens of statements per company known on the calendar's first day; tables in reverse
    order and rows after D dropped: features at dates <= D stay bit-identical."""
    first = market["trading_calendar"].get_column("Date").min()
    early = market["statements"].filter(pl.col("DisclosedDate") < first)
    assert early.group_by("Code").len().get_column("len").min() >= 3
    day = market["daily_quotes"].get_column("Date").unique().sort()[200]
    cut = {name: frame.filter(~future_mask(name, frame, day))[::-1] for name, frame in market.items()}
    a = build_all(market, feature_params, horizons).features
    b = build_all(cut, feature_params, horizons).features
    assert changed_features(a, b, day) == []


def test_simulated_market_features_up_to_d_do_not_depend_on_later_rows(feature_params: FeatureParams) -> None:
    """The project's market simulator (test environment): its statements table has many
    forecasts of one company known the same day. Rows after D dropped and every table in
    reverse order: features at dates <= D stay bit-identical (an unstable pick among tied
    forecasts once moved up to 544 stmt_ values here)."""
    conf = load_conf("test")["parameters"]
    raw = simulator.simulate_market(SimulatorParams(**conf["simulator"]), list(conf["horizons"]),
                                   LabelParams(**conf["labels"]))
    market_ = {TABLES_BY_RAW_NAME[k].canonical_name: TABLES_BY_RAW_NAME[k].to_canonical(v)
               for k, v in raw.items() if k in TABLES_BY_RAW_NAME}
    horizons = list(conf["horizons"])
    day = market_["daily_quotes"].get_column("Date").unique().sort()[240]
    cut = {name: frame.filter(~future_mask(name, frame, day))[::-1] for name, frame in market_.items()}
    a = build_all(market_, feature_params, horizons).features
    b = build_all(cut, feature_params, horizons).features
    assert changed_features(a, b, day) == []


# ---- the calendar, the cut-off time, the listed master ----------------------------------------

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
    margin_ = features.filter(pl.col("Code") == code).select("Date", "stmt_op_margin")
    shows = margin_.filter((pl.col("stmt_op_margin") - 0.5).abs() < 1e-6).get_column("Date")
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


def test_as_of_join_refuses_ties_it_would_break_by_row_order() -> None:
    left = pl.LazyFrame({"Code": ["a"], "_d": [3]})
    right = pl.LazyFrame({"Code": ["a", "a"], "_avail_d": [1, 1], "v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="share"):
        calendar.asof_backward(left, right, left_on="_d", right_on="_avail_d", by="Code").collect()


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
