"""Feature engineering: canonical tables -> point-in-time features, targets, stock graph, manifest.

One small module per feature group (``px``, ``tech``, ``mkt``, ``beta_alpha``, ``sector``,
``flow``, ``margin``, ``short``, ``stmt``, ``evt``, ``grf``, ``interactions``,
``cross_sectional``); each exposes ``features(params)`` (names, descriptions, expressions,
sources, lags – the manifest is built from these) and ``compute(panel, ..., params)``.
``registry`` declares each group once (name, source tables, features, compute, row order);
the manifest, the pipeline's group nodes and docs/features.md are built from it.
"""
