"""Ingestion: fetch the raw market tables from the configured source and map them to canonical tables."""

from atft_kedro.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
