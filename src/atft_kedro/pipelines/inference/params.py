"""Typed parameters of the inference pipeline (``params:inference`` in conf)."""

from __future__ import annotations

from pydantic import Field

from atft_kedro.schemas.strict import StrictModel


class InferenceParams(StrictModel):
    """``params:inference``: how the daily ranking is laid out for a portfolio manager."""

    buckets: int = Field(ge=2, description="equal-count score buckets per horizon (1 = lowest)")
    adv_window_days: int = Field(ge=1, description="trading days of the average traded value column")
    summary_rows: int = Field(ge=1, description="names at the top and at the bottom of the Markdown summary")
    csv_decimals: int = Field(ge=0, le=12, description="decimals of the CSV's scores and bands")
