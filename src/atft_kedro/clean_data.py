"""``make clean-data``: delete what one environment's pipelines write, and nothing else.

The files to delete are the catalog's: every ``filepath`` of the environment's resolved catalog
(``${globals:data_root}/...``), dataset factories included (``{k}`` placeholders become
wildcards), plus the hidden staging leftovers of an interrupted atomic write beside each
(``.<name>.*``). A user's own files are never touched: nothing outside the environment's data
root, and nothing inside the ``files`` source folder (``ingestion.files.directory``), wherever it is.

Run ``python -m atft_kedro.clean_data --env test`` (``make clean-data ENV=test``); ``--dry-run``
lists the paths without deleting them.
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from atft_kedro.config import ProjectConfigLoader

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def catalog_filepaths(catalog: Mapping[str, Any]) -> list[str]:
    """Every ``filepath``/``path`` string of a resolved catalog (nested dataset entries included)."""
    def walk(entry: Any) -> Iterator[str]:
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                if key in ("filepath", "path") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)

    return sorted({path for name, entry in catalog.items() if not name.startswith("_") for path in walk(entry)})


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def output_paths(project_path: Path, env: str) -> tuple[Path, list[Path]]:
    """The environment's data root and the existing files/folders its catalog writes (leftovers included).

    Raises:
        ValueError: a catalog path lies outside the data root (it would not be this env's output).
    """
    loader = ProjectConfigLoader(conf_source=str(project_path / "conf"), base_env="base",
                                 default_run_env="local", env=env)
    root = (project_path / str(loader["globals"]["data_root"])).resolve()
    files_dir = Path(str(loader["parameters"]["ingestion"]["files"]["directory"]))
    protected = (files_dir if files_dir.is_absolute() else project_path / files_dir).resolve()
    found: set[Path] = set()
    for declared in catalog_filepaths(loader["catalog"]):
        pattern = _PLACEHOLDER.sub("*", declared)
        target = (project_path / pattern) if not Path(pattern).is_absolute() else Path(pattern)
        if not _inside(target.resolve(), root):
            raise ValueError(f"catalog path '{declared}' of environment '{env}' is outside its data root {root}; "
                             "refusing to clean")
        parent = target.parent
        if not parent.exists() and "*" not in str(parent):
            continue
        for name in (target.name, f".{target.name}.*"):
            found.update(match.resolve() for match in Path(parent.anchor).glob(str(parent / name)[1:])
                         if match.exists())
    kept = {path for path in found if not (_inside(path, protected) or _inside(protected, path))}
    return root, sorted(kept)


def clean(project_path: Path, env: str, dry_run: bool) -> list[Path]:
    """Delete (or only list, with ``dry_run``) the outputs of ``env``; returns what was (or would be) deleted."""
    _, paths = output_paths(project_path, env)
    if not dry_run:
        for path in paths:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m atft_kedro.clean_data --env <env> [--dry-run] [--project PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="Kedro environment whose outputs are deleted (local, test, ...)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="project root (default: here)")
    parser.add_argument("--dry-run", action="store_true", help="list the paths, delete nothing")
    args = parser.parse_args(argv)
    paths = clean(args.project.resolve(), args.env, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in paths:
        print(f"{verb} {path}")
    print(f"{len(paths)} path(s) {'listed (dry run)' if args.dry_run else 'deleted'} for environment '{args.env}'")


if __name__ == "__main__":
    main()
