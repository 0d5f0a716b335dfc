"""Date splits, the robust normalizer and the dense model input (the normalization pipeline's library).

- ``params``: ``NormalizationParams`` (``params:normalization``).
- ``splits``: the default chain and walk-forward folds on the exchange calendar.
- ``state`` / ``robust`` / ``transform``: the normalizer's state, its fit on every training row, its transform.
- ``dense``: the [days, stocks, features] ``ModelInput``.
"""
