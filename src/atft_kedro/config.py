"""The project's config loader: Kedro's ``OmegaConfigLoader`` plus personal credentials in every env.

Kedro reads ``conf/base`` and ONE run environment: ``local`` by default, or the one named by
``--env``. Secrets live in ``conf/local/credentials.yml`` (git-ignored), so without help
``kedro run --env jquants`` would never see the API key. This loader reads credentials as
usual and then lays ``conf/local/credentials*`` over them whatever the run environment is,
so the key has one home and every environment finds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

#: The environment that holds personal, git-ignored configuration.
PERSONAL_ENV = "local"


class ProjectConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` whose ``credentials`` always include ``conf/local/credentials*``."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        run_env = self.env or self.default_run_env
        if key != "credentials" or run_env == PERSONAL_ENV:
            return config
        personal = sorted(Path(self.conf_source, PERSONAL_ENV).glob("credentials*.y*ml"))
        merged = OmegaConf.merge(
            OmegaConf.create(dict(config)),
            *(OmegaConf.load(path) for path in personal),
        )
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]
