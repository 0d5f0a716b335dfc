"""Typed parameters of the ingestion pipeline (``conf/*/parameters_ingestion.yml``)."""

from __future__ import annotations

from typing import Literal

from atft_kedro.schemas.strict import StrictModel
from atft_kedro.sources.files import FilesSourceParams
from atft_kedro.sources.jquants import JQuantsSourceParams


class IngestionParams(StrictModel):
    """``ingestion:`` block. ``source`` picks where the raw tables come from.

    Attributes:
        source: ``synthetic`` (the market simulator, ``simulator:`` block), ``jquants``
            (the J-Quants API v2, key in ``conf/local/credentials.yml``) or ``files``
            (a folder of J-Quants v2-shaped files).
        jquants: settings of the J-Quants source.
        files: settings of the files source.
    """

    source: Literal["synthetic", "jquants", "files"]
    jquants: JQuantsSourceParams
    files: FilesSourceParams
