"""``docs/features.md``: the feature list, written from the feature manifest.

``python -m atft_kedro.features.docs`` (from the project root) rebuilds the manifest from
the base parameters and rewrites the file; a test checks that the file is current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from atft_kedro.features.manifest import build_feature_manifest
from atft_kedro.features.params import FeatureParams
from atft_kedro.features.registry import FeatureGroup, group_entry
from atft_kedro.schemas.manifest import FeatureManifest

def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _reads(name: str) -> str:
    """What a group is computed from: the panel and its source tables, or the other groups."""
    entry = group_entry(name)
    if isinstance(entry, FeatureGroup):
        return ", ".join(["stock panel", *(f"`{s}`" for s in entry.sources)])
    return "the other groups' features"


def write_features_doc(manifest: FeatureManifest) -> str:
    """Markdown listing every feature of ``manifest`` by group, with source and lag.

    Group titles, descriptions and source tables come from the registry (``features.registry``).
    """
    lines = [
        "# Features",
        "",
        "Generated from the feature manifest of `conf/base/parameters_feature_engineering.yml` by",
        "`python -m atft_kedro.features.docs`; do not edit by hand.",
        "",
        f"{len(manifest)} float32 features, manifest hash `{manifest.hash}`.",
        "",
        "A feature at date t uses only what is known at the close of t on the exchange calendar.",
        "`lag` is the number of trading days after the underlying event before the value is used",
        "(statements disclosed at or after 15:00 and published tables count from the next trading day).",
        "",
        "Each group is declared once in `src/atft_kedro/features/registry.py` (what it reads, its features, its",
        "compute function) and switched on or off by `params:feature_engineering.groups.<group>`.",
        "",
        "| group | what | reads | on | features | note |",
        "|---|---|---|---|---|---|",
    ]
    for g in manifest.groups:
        lines.append(f"| {g.name} | {_cell(group_entry(g.name).description)} | {_reads(g.name)} | "
                     f"{'yes' if g.enabled else 'no'} | {g.n_features} | {_cell(g.reason)} |")
    for g in manifest.groups:
        specs = [f for f in manifest.features if f.group == g.name]
        if not specs:
            continue
        lines += ["", f"## {group_entry(g.name).title}", "", "| feature | source | lag | description |",
                  "|---|---|---|---|"]
        lines += [f"| `{f.name}` | {f.source} | {f.lag_days} | {_cell(f.description)} |" for f in specs]
    return "\n".join(lines) + "\n"


def load_params(conf_source: Path, env: str) -> FeatureParams:
    """``params:feature_engineering`` of ``env`` (over base), read by Kedro's config loader."""
    from atft_kedro.config import ProjectConfigLoader

    loader = ProjectConfigLoader(conf_source=str(conf_source), base_env="base", default_run_env=env, env=env)
    return FeatureParams(**loader["parameters"]["feature_engineering"])


def main(argv: list[str] | None = None) -> Path:
    """Write the features doc; returns its path."""
    parser = argparse.ArgumentParser(description="Write docs/features.md from the feature manifest.")
    parser.add_argument("--conf-source", type=Path, default=Path("conf"))
    parser.add_argument("--env", default="base")
    parser.add_argument("--out", type=Path, default=Path("docs/features.md"))
    args = parser.parse_args(argv)
    text = write_features_doc(build_feature_manifest(load_params(args.conf_source, args.env)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return args.out


if __name__ == "__main__":
    print(main())
