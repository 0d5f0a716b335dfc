"""Typed parameters of the evaluation library (``params:evaluation`` in conf).

Every tunable lives in ``conf/base/parameters_evaluation.yml``; none has a default here.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from atft_kedro.evaluation.importance import ImportanceParams
from atft_kedro.schemas.strict import StrictModel


class PlotParams(StrictModel):
    top_features: int = Field(ge=1, description="bars in the feature-importance chart")


class EvaluationParams(StrictModel):
    """Everything the evaluation of forecasts needs.

    Attributes:
        horizons: forecast horizons (trading days) evaluated, e.g. (1, 5, 10, 20).
        primary_horizon: the horizon shown first in the report; one of ``horizons``.
        min_stocks_per_day: days with fewer valid (forecast, outcome) pairs are dropped
            from IC statistics and form no portfolio.
        n_quantiles: forecast buckets for decile returns and the long-short portfolio (10).
        top_k: stocks held by the long-only portfolio.
        cost_bps: cost per unit of traded value, in basis points, charged on every buy
            and every sell (so on two-way turnover ``sum |dw|``).
        periods_per_year: trading days per year for annualisation (245 on the TSE).
        importance: the permutation importance (validation days scored, seed).
        plots: parameters of the figures.
    """

    horizons: tuple[int, ...] = Field(min_length=1)
    primary_horizon: int
    min_stocks_per_day: int = Field(ge=2)
    n_quantiles: int = Field(ge=2)
    top_k: int = Field(ge=1)
    cost_bps: float = Field(ge=0.0)
    periods_per_year: int = Field(ge=1)
    importance: ImportanceParams
    plots: PlotParams

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationParams:
        problems = []
        if any(h < 1 for h in self.horizons):
            problems.append(f"horizons must be >= 1 trading day, got {self.horizons}")
        if len(set(self.horizons)) != len(self.horizons):
            problems.append(f"horizons repeat: {self.horizons}")
        if self.primary_horizon not in self.horizons:
            problems.append(f"primary_horizon {self.primary_horizon} is not in horizons {self.horizons}")
        if self.min_stocks_per_day < self.n_quantiles:
            problems.append(
                f"min_stocks_per_day {self.min_stocks_per_day} < n_quantiles {self.n_quantiles}: "
                "some buckets would be empty"
            )
        if problems:
            raise ValueError("evaluation parameters: " + "; ".join(problems))
        return self
