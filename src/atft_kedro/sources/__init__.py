"""Sources of the raw market tables (J-Quants API v2 field names).

Every source returns ``dict[str, pl.DataFrame]`` keyed by each ``TableSpec.raw_name``
of :mod:`atft_kedro.schemas.tables`, cast to the spec dtypes:

* :mod:`atft_kedro.sources.jquants` - the J-Quants API v2 through ``jquantsapi.ClientV2``;
* :mod:`atft_kedro.sources.files` - a folder of J-Quants v2-shaped Parquet or CSV files;
* :mod:`atft_kedro.sources.raw_cast` - the one cast (strings or numbers -> spec dtypes) both use.
"""
