"""The one base of every typed parameter block and typed document of the project.

``StrictModel`` is a pydantic model that refuses unknown keys at any depth (``extra="forbid"``:
a misspelt key in ``conf/`` is an error naming it, never silently ignored) and is immutable
once validated (``frozen=True``: a node cannot change the parameters another node reads).
Subclass it instead of ``pydantic.BaseModel``; it imports only pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A frozen pydantic model that forbids unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)
