"""The simulator's public contract: every raw table in J-Quants v2 shape, the oracle, the params."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from atft_kedro.market import SimulatorParams, simulate_market
from atft_kedro.schemas import raw, tables
from market_helpers import HORIZONS, LABELS, load_simulator_block, with_overrides


def test_every_raw_table_passes_its_schema(test_tables: dict[str, pl.DataFrame]) -> None:
    for spec in tables.TABLES:
        df = test_tables[spec.raw_name]
        assert df.height > 0, spec.raw_name
        spec.raw_schema().validate(df)
        assert df.columns == spec.raw_columns, spec.raw_name
    raw.ORACLE_EXPECTED_RETURNS.validate(test_tables["oracle_expected_returns"])


def test_oracle_columns_and_rows_match_the_bars(test_tables: dict[str, pl.DataFrame]) -> None:
    oracle = test_tables["oracle_expected_returns"]
    assert oracle.columns == ["Date", "Code", *(f"exp_ret_{h}d" for h in HORIZONS)]
    bars = test_tables[tables.DAILY_BARS.raw_name].select("Date", "Code")
    assert_frame_equal(oracle.select("Date", "Code").sort("Date", "Code"), bars.sort("Date", "Code"))
    assert oracle.null_count().sum_horizontal().item() == 0


def test_codes_and_flags_look_like_the_api(test_tables: dict[str, pl.DataFrame]) -> None:
    bars = test_tables[tables.DAILY_BARS.raw_name]
    assert bars["Code"].str.contains(r"^[1-9]\d{3}0$").all()
    assert set(bars["UL"].unique()) <= {"0", "1"} and set(bars["LL"].unique()) <= {"0", "1"}
    master = test_tables[tables.EQUITIES_MASTER.raw_name]
    assert set(master["Mkt"].unique()) <= {"0111", "0112", "0113"}
    s33 = set(master["S33"].unique())
    assert s33 <= {f"{c:04d}" for c in (50, 1050, 2050, *range(3050, 3801, 50), 4050, *range(5050, 5251, 50),
                                        6050, 6100, 7050, 7100, 7150, 7200, 8050, 9050)}
    assert (master["S17"].cast(pl.Int64).is_between(1, 17)).all()
    statements = test_tables[tables.FIN_SUMMARY.raw_name]
    assert statements["DiscTime"].str.contains(r"^\d{2}:\d{2}:\d{2}$").all()
    assert test_tables[tables.TRADING_CALENDAR.raw_name]["HolDiv"].is_in(["0", "1"]).all()


def test_same_seed_same_market_and_another_seed_another(test_params: SimulatorParams,
                                                         test_tables: dict[str, pl.DataFrame]) -> None:
    small = SimulatorParams(**with_overrides(test_params.model_dump(mode="json"), {"n_stocks": 12}))
    first = simulate_market(small, [1, 5], LABELS)
    second = simulate_market(small, [1, 5], LABELS)
    for name, df in first.items():
        assert_frame_equal(df, second[name])
    other = simulate_market(SimulatorParams(**with_overrides(small.model_dump(mode="json"), {"seed": 99})), [1, 5], LABELS)
    assert not first[tables.DAILY_BARS.raw_name].equals(other[tables.DAILY_BARS.raw_name])


def test_horizons_must_be_positive(test_params: SimulatorParams) -> None:
    with pytest.raises(ValueError, match="horizons"):
        simulate_market(test_params, [0, 5], LABELS)


@pytest.mark.parametrize("env", ["base", "test", "gpu"])
def test_conf_files_are_complete_simulator_blocks(env: str) -> None:
    params = SimulatorParams(**load_simulator_block(env))
    assert params.model_dump().keys() == SimulatorParams(**load_simulator_block("base")).model_dump().keys()


def test_conf_sizes() -> None:
    base, test, gpu = (SimulatorParams(**load_simulator_block(e)) for e in ("base", "test", "gpu"))
    assert 300 <= base.n_stocks <= 500 and test.n_stocks <= 100 and gpu.n_stocks == 4000
    assert (gpu.end_date - gpu.start_date).days > 9 * 365


def test_params_reject_unknown_and_missing_keys() -> None:
    block = load_simulator_block("test")
    with pytest.raises(ValidationError, match="typo"):
        SimulatorParams(**with_overrides(block, {"typo": 1}))
    missing = dict(block)
    missing.pop("seed")
    with pytest.raises(ValidationError, match="seed"):
        SimulatorParams(**missing)
    with pytest.raises(ValidationError, match="alpha \\+ beta"):
        SimulatorParams(**with_overrides(block, {"returns.garch.alpha": 0.2, "returns.garch.beta": 0.85}))
    with pytest.raises(ValidationError, match="split_ratio_weights"):
        SimulatorParams(**with_overrides(block, {"prices.split_ratio_weights": [1.0]}))
    with pytest.raises(ValidationError, match="fiscal_year_end_months"):
        SimulatorParams(**with_overrides(block, {"statements.fiscal_year_end_months": [3, 12, 9, 5]}))
