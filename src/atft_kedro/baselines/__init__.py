"""Baseline forecasters the ATFT-GAT-FAN model is compared with (LightGBM, HistGradientBoosting,
ridge, 20-day momentum): pure functions on the same normalised features and tradable targets."""
