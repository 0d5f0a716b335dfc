"""The J-Quants API key, from Kedro's credentials (``conf/local/credentials.yml``), never from the environment.

Catalog entry (``conf/base/catalog.yml``)::

    jquants_credentials:
      type: atft_kedro.sources.jquants.JQuantsCredentialsDataset
      credentials: jquants

and in ``conf/local/credentials.yml`` (git-ignored)::

    jquants:
      api_key: "<your J-Quants API v2 key>"

The key is only needed when ``ingestion.source`` is ``jquants``; :func:`require_api_key`
turns a missing key into a clear error at that point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kedro.io import AbstractDataset, DatasetError

ALLOWED_CREDENTIAL_KEYS: frozenset[str] = frozenset({"api_key"})

MISSING_KEY_MESSAGE = (
    "ingestion.source is 'jquants' but no J-Quants API key is configured: put\n"
    "  jquants:\n"
    "    api_key: \"<your J-Quants API v2 key>\"\n"
    "in conf/local/credentials.yml (git-ignored; the key is on the J-Quants dashboard)"
)


@dataclass(frozen=True)
class JQuantsCredentials:
    """The J-Quants API v2 key, or None when none is configured. Its repr never shows the key."""

    api_key: str | None = field(repr=False)

    def __repr__(self) -> str:
        return f"JQuantsCredentials(api_key={'<set>' if self.api_key else '<not set>'})"


def require_api_key(credentials: JQuantsCredentials) -> str:
    """Return the API key, or raise telling the user where to put it.

    Raises:
        ValueError: when the key is missing or blank.
    """
    key = credentials.api_key
    if key is None or not key.strip():
        raise ValueError(MISSING_KEY_MESSAGE)
    return key.strip()


class JQuantsCredentialsDataset(AbstractDataset[None, JQuantsCredentials]):
    """A read-only dataset whose ``load()`` is the :class:`JQuantsCredentials` from Kedro's credentials.

    Args:
        credentials: the ``jquants`` entry of ``conf/*/credentials.yml`` that Kedro passes
            (``{"api_key": ...}``), or None.
        metadata: Kedro metadata (e.g. kedro-viz layer), unused here.

    Raises:
        DatasetError: when the entry holds keys other than ``api_key`` (a typo would
            otherwise look like a missing key), or ``api_key`` is not text.
    """

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        entry = dict(credentials or {})
        unknown = sorted(set(entry) - ALLOWED_CREDENTIAL_KEYS)
        if unknown:
            raise DatasetError(
                f"credentials 'jquants' has unknown keys {unknown}; the only key is 'api_key' "
                f"(conf/local/credentials.yml)"
            )
        key = entry.get("api_key")
        if key is not None and not isinstance(key, str):
            raise DatasetError(
                f"credentials 'jquants.api_key' must be text, got {type(key).__name__} (conf/local/credentials.yml)"
            )
        self._credentials = JQuantsCredentials(api_key=key)
        self.metadata = metadata

    def load(self) -> JQuantsCredentials:
        return self._credentials

    def save(self, data: None) -> None:
        raise DatasetError("jquants_credentials is read-only: put the key in conf/local/credentials.yml")

    def _describe(self) -> dict[str, Any]:
        return {"api_key": "<set>" if self._credentials.api_key else "<not set>"}
