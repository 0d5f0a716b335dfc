"""Weekly investor-type flows, weekly margin balances, daily margin alerts, daily sector short
selling and short-position reports.

Margin crowding is a latent weekly AR(1) per stock, c' = phi c + sqrt(1 - phi^2) sd eps; the long
margin balance is shares x base_i x exp(c - sd^2/2), so the published week-on-week change of
log(balance / shares) is the change of c: the signal of the margin-reversal effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.signal import lfilter
from scipy.stats import norm

from atft_kedro.market.calendar import Timeline
from atft_kedro.market.frames import float_column, gather_dates, gather_strings
from atft_kedro.market.params import INVESTOR_CUSTOMER_GROUPS, FlowParams
from atft_kedro.market.sectors import MARGIN_CODES, MARKETS, N_SECTORS, SECTOR33
from atft_kedro.market.universe import Universe

SHORT_REPORT_THRESHOLD = 0.005  # positions of 0.5 % of shares or more are reported
SHORT_REPORT_CHANGE = 0.001  # ... again when they move by 0.1 % of shares
MARGIN_REGULATION_CLASS = "001"
THOUSAND = 1000.0
_SELLER_FIRST = ("Aozora", "Hinode", "Kasumi", "Kumo", "Mizuho-Sim", "Nami", "Sakura", "Shiro", "Sora",
                 "Tsuki", "Yama", "Yuki")
_SELLER_SECOND = ("Capital Management LP", "Asset Management Ltd", "Partners LLC", "Securities plc",
                  "Investors Fund", "Global Markets Ltd")


@dataclass(frozen=True)
class Weeks:
    """Complete trading weeks inside the sample [W]: sample day of the first and last trading day."""

    first_day: np.ndarray
    last_day: np.ndarray


def sample_weeks(timeline: Timeline) -> Weeks:
    """Weeks (Monday-Sunday) whose trading days all lie inside the sample."""
    week = (timeline.days.astype(np.int64) + 3) // 7
    starts = np.flatnonzero(np.concatenate([[True], week[1:] != week[:-1]]))
    ends = np.concatenate([starts[1:] - 1, [week.shape[0] - 1]])
    inside = (starts >= timeline.offset) & (ends <= timeline.last_sample_global)
    return Weeks(first_day=starts[inside] - timeline.offset, last_day=ends[inside] - timeline.offset)


@dataclass(frozen=True)
class Margin:
    """Weekly margin state [W, N] and per-stock bases [N].

    Attributes:
        weeks: the weeks (Date = last trading day of the week; PubDate = next trading day).
        usable_day: [W] sample day from whose close the week's table is usable (PubDate + 1).
        eligible: [N] MarginCode 1 or 2 (has margin data).
        crowding, short_crowding: latent log deviations of the long and short balances.
        change: published change of crowding (0 without a comparable previous week).
        long_base, short_base: balance per share at zero crowding.
    """

    weeks: Weeks
    usable_day: np.ndarray
    eligible: np.ndarray
    crowding: np.ndarray
    short_crowding: np.ndarray
    change: np.ndarray
    long_base: np.ndarray
    short_base: np.ndarray


def _ar1(rng: np.random.Generator, n_steps: int, n: int, phi: float, sd: float) -> np.ndarray:
    start = sd * rng.standard_normal((1, n))
    innovations = np.sqrt(1.0 - phi**2) * sd * rng.standard_normal((n_steps, n))
    return lfilter([1.0], [1.0, -phi], innovations, axis=0, zi=phi * start)[0]


def draw_margin(params: FlowParams, universe: Universe, timeline: Timeline, rng: np.random.Generator) -> Margin:
    """Latent weekly long/short margin crowding of every stock and the published changes."""
    weeks = sample_weeks(timeline)
    n_weeks, n = weeks.last_day.shape[0], universe.n
    eligible = universe.margin_code != 2
    crowding = _ar1(rng, n_weeks, n, params.margin_persistence, params.margin_crowding_vol) * eligible
    short_crowding = _ar1(rng, n_weeks, n, params.margin_persistence, params.margin_crowding_vol) * eligible
    listed_at = universe.listed(timeline.n_days)[weeks.last_day] & eligible[None, :]
    comparable = listed_at & np.vstack([np.zeros((1, n), dtype=bool), listed_at[:-1]])
    change = np.where(comparable, crowding - np.vstack([crowding[:1], crowding[:-1]]), 0.0)
    long_base = params.margin_long_share_median * np.exp(params.margin_base_log_sd * rng.standard_normal(n))
    short_base = long_base * params.margin_short_to_long * np.exp(params.margin_base_log_sd * rng.standard_normal(n))
    return Margin(
        weeks=weeks, usable_day=weeks.last_day + 2, eligible=eligible, crowding=crowding,
        short_crowding=short_crowding, change=change, long_base=long_base, short_base=short_base,
    )


def margin_level_at_close(margin: Margin, n_days: int) -> np.ndarray:
    """Latent crowding of the latest weekly table usable at each close [T, N] (0 before the first)."""
    latest = np.searchsorted(margin.usable_day, np.arange(n_days), side="right") - 1
    level = margin.crowding[np.clip(latest, 0, None)]
    level[latest < 0] = 0.0
    return level


def _round_shares(x: np.ndarray) -> np.ndarray:
    return np.round(x / 100.0) * 100.0


def margin_interest_table(margin: Margin, shares: np.ndarray, universe: Universe, timeline: Timeline,
                          params: FlowParams) -> pl.DataFrame:
    """``raw_margin_interest``: weekly balances per eligible stock listed on the week's last day."""
    listed = universe.listed(timeline.n_days)[margin.weeks.last_day] & margin.eligible[None, :]
    published = timeline.offset + margin.weeks.last_day + 1
    listed &= (published <= timeline.last_sample_global)[:, None]
    w, i = np.nonzero(listed)
    day = margin.weeks.last_day[w]
    sd2 = params.margin_crowding_vol**2 / 2.0
    long_total = shares[day, i] * margin.long_base[i] * np.exp(margin.crowding[w, i] - sd2)
    short_total = shares[day, i] * margin.short_base[i] * np.exp(margin.short_crowding[w, i] - sd2)
    std = params.margin_standardized_share
    loan = universe.margin_code[i] == 1  # only loan issues can be sold short on standardized margin
    long_std = _round_shares(long_total * std)
    long_neg = _round_shares(long_total * (1.0 - std))
    short_std = np.where(loan, _round_shares(short_total * std), 0.0)
    short_neg = np.where(loan, _round_shares(short_total * (1.0 - std)), _round_shares(short_total))
    return pl.DataFrame(
        [
            gather_dates(timeline.days, published[w], "PubDate"),
            gather_dates(timeline.sample_days, day, "Date"),
            gather_strings(universe.codes, i, "Code"),
            gather_strings([m[0] for m in MARGIN_CODES], universe.margin_code[i], "IssType"),
            float_column(short_std + short_neg, "ShrtVol"),
            float_column(long_std + long_neg, "LongVol"),
            float_column(short_neg, "ShrtNegVol"),
            float_column(long_neg, "LongNegVol"),
            float_column(short_std, "ShrtStdVol"),
            float_column(long_std, "LongStdVol"),
        ]
    ).sort("Date", "Code")


def margin_alert_table(margin: Margin, shares: np.ndarray, universe: Universe, timeline: Timeline,
                       params: FlowParams) -> pl.DataFrame:
    """``raw_margin_alert``: daily balances of stocks under a margin alert.

    A stock whose crowding ends a week above the stationary ``1 - margin_alert_share`` quantile
    is under alert the next week; its daily balance moves linearly between the weekly values.
    """
    n_days, n = timeline.n_days, universe.n
    weeks = margin.weeks
    threshold = params.margin_crowding_vol * norm.ppf(1.0 - params.margin_alert_share)
    # week index each day belongs to (the week that ends on or after the day)
    week_of_day = np.clip(np.searchsorted(weeks.last_day, np.arange(n_days), side="left"), 0, len(weeks.last_day) - 1)
    prev_week = week_of_day - 1
    valid = (prev_week >= 0) & (np.arange(n_days) <= weeks.last_day[-1]) & (np.arange(n_days) > weeks.last_day[0])
    alert = valid[:, None] & (margin.crowding[np.clip(prev_week, 0, None)] >= threshold)
    alert &= universe.listed(n_days) & margin.eligible[None, :]
    alert &= (timeline.offset + np.arange(n_days) + 1 <= timeline.last_sample_global)[:, None]

    start = weeks.last_day[np.clip(prev_week, 0, None)]
    span = np.maximum(weeks.last_day[week_of_day] - start, 1)
    frac = ((np.arange(n_days) - start) / span)[:, None]
    prev_c = margin.crowding[np.clip(prev_week, 0, None)]
    level = prev_c + (margin.crowding[week_of_day] - prev_c) * frac
    prev_s = margin.short_crowding[np.clip(prev_week, 0, None)]
    short_level = prev_s + (margin.short_crowding[week_of_day] - prev_s) * frac
    sd2 = params.margin_crowding_vol**2 / 2.0
    long_out = _round_shares(shares * margin.long_base[None, :] * np.exp(level - sd2))
    short_out = _round_shares(shares * margin.short_base[None, :] * np.exp(short_level - sd2))
    had = np.vstack([np.zeros((1, n), dtype=bool), alert[:-1]])
    long_chg = np.where(had, long_out - np.vstack([long_out[:1], long_out[:-1]]), np.nan)
    short_chg = np.where(had, short_out - np.vstack([short_out[:1], short_out[:-1]]), np.nan)

    d, i = np.nonzero(alert)
    lo, so, sh = long_out[d, i], short_out[d, i], shares[d, i]
    return pl.DataFrame(
        [
            gather_dates(timeline.days, timeline.offset + d + 1, "PubDate"),
            gather_strings(universe.codes, i, "Code"),
            gather_dates(timeline.sample_days, d, "AppDate"),
            float_column(so, "ShrtOut"),
            float_column(short_chg[d, i], "ShrtOutChg"),
            float_column(np.round(so / sh * 100.0, 2), "ShrtOutRatio"),
            float_column(lo, "LongOut"),
            float_column(long_chg[d, i], "LongOutChg"),
            float_column(np.round(lo / sh * 100.0, 2), "LongOutRatio"),
            float_column(np.round(np.divide(so, lo, out=np.full_like(so, np.nan), where=lo > 0) * 100.0, 2),
                         "SLRatio"),
            gather_strings([MARGIN_REGULATION_CLASS], np.zeros(d.shape[0], dtype=np.int64), "TSEMrgnRegCls"),
        ]
    ).sort("PubDate", "Code")


def investor_types_table(turnover: np.ndarray, listed: np.ndarray, index_close: np.ndarray, universe: Universe,
                         timeline: Timeline, params: FlowParams, market_vol: float,
                         rng: np.random.Generator) -> pl.DataFrame:
    """``raw_investor_types``: weekly trading value (thousand yen) by investor group per section.

    Sell + buy of all groups equals twice the section's weekly turnover; a group's net buying
    is ``beta_g`` x the week's standardised market return plus noise, netted to zero overall.
    """
    weeks = sample_weeks(timeline)
    n_weeks = weeks.last_day.shape[0]
    week_of_day = np.searchsorted(weeks.last_day, np.arange(timeline.n_days), side="left")
    days = np.arange(timeline.n_days)
    in_week = (week_of_day < n_weeks) & (days >= weeks.first_day[np.clip(week_of_day, 0, n_weeks - 1)])
    section_value = np.zeros((n_weeks, len(MARKETS)))
    daily = np.stack([(turnover * (listed & (universe.market == m)[None, :])).sum(axis=1) for m in range(len(MARKETS))],
                     axis=1)
    np.add.at(section_value, week_of_day[in_week], daily[in_week])
    prev_level = np.concatenate([[index_close[0]], index_close])[weeks.first_day]
    week_return = np.log(index_close[weeks.last_day] / prev_level)
    z = week_return / (market_vol * np.sqrt(np.maximum(weeks.last_day - weeks.first_day + 1, 1)))

    groups = ("Prop", *INVESTOR_CUSTOMER_GROUPS)
    share = np.array([params.investor_turnover_shares[g] for g in groups])
    share = share / share.sum()
    beta = np.array([params.investor_flow_betas[g] for g in groups])
    net = beta[None, None, :] * z[:, None, None] + params.investor_flow_noise * rng.standard_normal(
        (n_weeks, len(MARKETS), len(groups)))
    net -= (net * share).sum(axis=2, keepdims=True)
    net = np.clip(net, -0.9, 0.9)
    value = section_value[:, :, None] * share[None, None, :] / THOUSAND
    buy, sell = np.round(value * (1.0 + net)), np.round(value * (1.0 - net))
    customers = slice(1, len(groups))
    columns: dict[str, np.ndarray] = {}
    sides = {
        "Prop": (sell[..., 0], buy[..., 0]),
        "Brk": (sell[..., customers].sum(axis=2), buy[..., customers].sum(axis=2)),
    }
    sides["Tot"] = (sides["Prop"][0] + sides["Brk"][0], sides["Prop"][1] + sides["Brk"][1])
    for k, g in enumerate(INVESTOR_CUSTOMER_GROUPS, start=1):
        sides[g] = (sell[..., k], buy[..., k])
    for g, (s, b) in sides.items():
        columns[g + "Sell"], columns[g + "Buy"], columns[g + "Tot"], columns[g + "Bal"] = s, b, s + b, b - s

    published = timeline.offset + weeks.last_day + params.investor_types_publication_lag_days
    keep_week = published <= timeline.last_sample_global
    w, m = np.nonzero(keep_week[:, None] & (section_value > 0))
    return pl.DataFrame(
        [
            gather_dates(timeline.days, published[w], "PubDate"),
            gather_dates(timeline.sample_days, weeks.first_day[w], "StDate"),
            gather_dates(timeline.sample_days, weeks.last_day[w], "EnDate"),
            gather_strings([mk[2] for mk in MARKETS], m, "Section"),
            *(float_column(v[w, m], name) for name, v in columns.items()),
        ]
    ).sort("PubDate", "Section")


def short_ratio_table(turnover: np.ndarray, listed: np.ndarray, sector_cumulative: np.ndarray, universe: Universe,
                      timeline: Timeline, params: FlowParams, sector_vol: float,
                      rng: np.random.Generator) -> pl.DataFrame:
    """``raw_short_ratio``: daily selling turnover per sector-33 split into short and long sales.

    The short share rises after the sector falls: mean - sensitivity x (demeaned sector return /
    sector_vol) plus AR(1) noise, clipped to [0.05, 0.9].
    """
    one_hot = np.eye(N_SECTORS)[universe.sector]
    value = (turnover * listed) @ one_hot  # [T, S]
    sector_return = np.diff(sector_cumulative, axis=0) / sector_vol
    phi = params.short_ratio_persistence
    noise = lfilter([params.short_ratio_noise * np.sqrt(1.0 - phi**2)], [1.0, -phi], rng.standard_normal(value.shape),
                    axis=0)
    ratio = np.clip(params.short_ratio_mean - params.short_ratio_return_sensitivity * sector_return + noise, 0.05, 0.9)
    d, s = np.nonzero(value > 0)
    v, r = value[d, s], ratio[d, s]
    restricted = params.short_restricted_share
    return pl.DataFrame(
        [
            gather_dates(timeline.sample_days, d, "Date"),
            gather_strings([sec[0] for sec in SECTOR33], s, "S33"),
            float_column(np.round(v * (1.0 - r)), "SellExShortVa"),
            float_column(np.round(v * r * restricted), "ShrtWithResVa"),
            float_column(np.round(v * r * (1.0 - restricted)), "ShrtNoResVa"),
        ]
    )


def seller_names(n: int) -> list[str]:
    """``n`` distinct fictitious short-seller names."""
    names = [f"{a} {b}" for b in _SELLER_SECOND for a in _SELLER_FIRST]
    return [names[k % len(names)] + ("" if k < len(names) else f" {k // len(names) + 1}") for k in range(n)]


def short_positions_table(shares: np.ndarray, universe: Universe, timeline: Timeline, params: FlowParams,
                          rng: np.random.Generator) -> pl.DataFrame:
    """``raw_short_positions``: reports of large short positions by (seller, stock).

    A position (latent log AR(1) around ``short_position_mean``) is reported on a calculation
    day when it is at least 0.5 % of shares and either was not reported before or moved by
    0.1 % of shares since the last report, and once more when it falls below 0.5 %. The
    report is disclosed a few trading days after the calculation day.
    """
    n_days = timeline.n_days
    n_pairs_drawn = int(round(params.short_pairs_per_stock * universe.n))
    key = np.unique(rng.integers(0, params.short_sellers, n_pairs_drawn) * universe.n
                    + rng.integers(0, universe.n, n_pairs_drawn))
    seller, stock = key // universe.n, key % universe.n
    n_pairs = key.shape[0]
    path = _ar1(rng, n_days, n_pairs, params.short_position_persistence, params.short_position_vol)
    ratio_path = params.short_position_mean * np.exp(path)
    listed = universe.listed(n_days)[:, stock]

    active = np.zeros(n_pairs, dtype=bool)  # last report was at or above the threshold
    last_ratio = np.full(n_pairs, np.nan)
    last_day = np.full(n_pairs, -1)
    report_day, report_pair, report_prev_day, report_prev_ratio = [], [], [], []
    for t in range(n_days):  # the reporting rule depends on the last report: a loop over days
        ratio = ratio_path[t]
        above = ratio >= SHORT_REPORT_THRESHOLD
        first = above & ~active
        moved = above & active & (np.abs(ratio - last_ratio) >= SHORT_REPORT_CHANGE)
        dropped = ~above & active
        pairs = np.flatnonzero(listed[t] & (first | moved | dropped))
        report_day.append(np.full(pairs.shape[0], t))
        report_pair.append(pairs)
        report_prev_day.append(last_day[pairs].copy())
        report_prev_ratio.append(last_ratio[pairs].copy())
        last_ratio[pairs] = ratio[pairs]
        last_day[pairs] = t
        active[pairs] = above[pairs]
    day = np.concatenate(report_day)
    pair = np.concatenate(report_pair)
    prev_day = np.concatenate(report_prev_day)
    prev_ratio = np.concatenate(report_prev_ratio)
    lag = rng.integers(params.short_report_lag_days_min, params.short_report_lag_days_max + 1, size=day.shape[0])
    disclosed = timeline.offset + day + lag
    keep = disclosed <= timeline.last_sample_global
    day, pair, prev_day, prev_ratio = day[keep], pair[keep], prev_day[keep], prev_ratio[keep]
    disclosed = disclosed[keep]
    i = stock[pair]
    ratio = np.round(ratio_path[day, pair], 4)
    position = _round_shares(ratio_path[day, pair] * shares[day, i])
    has_prev = prev_day >= 0
    frame = pl.DataFrame(
        [
            gather_dates(timeline.days, disclosed, "DiscDate"),
            gather_dates(timeline.sample_days, day, "CalcDate"),
            gather_strings(universe.codes, i, "Code"),
            gather_strings(seller_names(params.short_sellers), seller[pair], "SSName"),
            float_column(ratio, "ShrtPosToSO"),
            float_column(position, "ShrtPosShares"),
            float_column(position / 100.0, "ShrtPosUnits"),
            gather_dates(timeline.sample_days, np.clip(prev_day, 0, None), "PrevRptDate"),
            float_column(np.round(np.where(has_prev, prev_ratio, np.nan), 4), "PrevRptRatio"),
            pl.Series("_has_prev", has_prev),
        ]
    )
    return (
        frame.with_columns(pl.when(pl.col("_has_prev")).then(pl.col("PrevRptDate")).alias("PrevRptDate"))
        .drop("_has_prev")
        .sort("DiscDate", "CalcDate", "Code", "SSName")
    )
