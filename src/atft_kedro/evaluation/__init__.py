"""Evaluation library: forecast metrics, portfolios, baselines, figures and the report.

Pure functions on Polars/NumPy; the evaluation and inference pipelines wire them.
"""
