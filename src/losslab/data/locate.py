"""Where dataset files are looked for, and what happens when they are missing.

Search order (the first directory holding *every* required file wins, so files of two
datasets that share names, MNIST and Fashion-MNIST, are never mixed):

1. ``root`` itself, then ``root/<subdir>`` for the dataset's sub-directory names;
2. ``$LOSSLAB_DATA/<subdir>``;
3. ``~/.cache/losslab/<subdir>`` (``$XDG_CACHE_HOME/losslab`` when that is set);
4. well-known system locations, e.g. ``/usr/share/datasets/fashion-mnist`` from the
   Debian package ``dataset-fashion-mnist``.

When nothing is found and downloading is allowed, the files are fetched from the official
source into ``root/<name>`` (or ``$LOSSLAB_DATA/<name>``, or the cache) with SHA-256
checks; offline, a :class:`LosslabError` lists the files, the places searched and how to
get them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from losslab.data import download as _download
from losslab.errors import LosslabError


@dataclass(frozen=True)
class FileSpec:
    """One required file: alternative relative paths (first existing wins) and its remote."""

    alternatives: tuple[str, ...]
    remote: _download.RemoteFile | None = None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/losslab`` or ``~/.cache/losslab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "losslab"


def candidate_dirs(
    root: str | os.PathLike | None,
    subdirs: Sequence[str],
    system_dirs: Sequence[str | os.PathLike] = (),
) -> list[Path]:
    """The directories searched, in order (see the module docstring)."""
    dirs: list[Path] = []
    if root is not None:
        base = Path(root).expanduser()
        dirs += [base] + [base / s for s in subdirs]
    env = os.environ.get("LOSSLAB_DATA")
    if env:
        dirs += [Path(env).expanduser() / s for s in subdirs]
    dirs += [cache_dir() / s for s in subdirs]
    dirs += [Path(d) for d in system_dirs]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def download_dir(root: str | os.PathLike | None, name: str) -> Path:
    """Where downloads go: ``root/<name>``, else ``$LOSSLAB_DATA/<name>``, else the cache."""
    if root is not None:
        return Path(root).expanduser() / name
    env = os.environ.get("LOSSLAB_DATA")
    return (Path(env).expanduser() if env else cache_dir()) / name


def _resolve(directory: Path, specs: Sequence[FileSpec]) -> list[Path] | None:
    found = []
    for spec in specs:
        hit = next((directory / a for a in spec.alternatives if (directory / a).exists()), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def locate(
    name: str,
    specs: Sequence[FileSpec],
    root: str | os.PathLike | None,
    subdirs: Sequence[str],
    system_dirs: Sequence[str | os.PathLike] = (),
    how_to: str = "",
    allow_download: bool = True,
) -> list[Path]:
    """Return one existing path per spec, all from the same directory, downloading if needed.

    Args:
        name: the dataset's registry name (names the download directory).
        specs: the required files.
        root: the user's data directory, or None.
        subdirs: sub-directory names the dataset may live under (``"fashion-mnist"``, ...).
        system_dirs: well-known system locations.
        how_to: extra instructions appended to the missing-files message.
        allow_download: try the official source when nothing is found.
    """
    searched = candidate_dirs(root, subdirs, system_dirs)
    for directory in searched:
        found = _resolve(directory, specs)
        if found is not None:
            return found
    reason = "downloading is switched off (download=False)"
    if allow_download and all(s.remote is not None for s in specs):
        target = download_dir(root, name)
        try:
            for spec in specs:
                if spec.remote is not None and _resolve(target, [spec]) is None:
                    _download.download(spec.remote, target)
        except _download.NetworkUnavailable as err:
            reason = f"the automatic download failed (offline?): {err}"
        else:
            found = _resolve(target, specs)
            if found is not None:
                return found
            reason = f"the download into {target} did not produce the expected files"
    raise LosslabError(_missing_message(name, specs, searched, how_to, reason))


def _missing_message(
    name: str, specs: Sequence[FileSpec], searched: Sequence[Path], how_to: str, reason: str
) -> str:
    """One line: the files, where they were looked for, why, and the command that gets them."""
    files = ", ".join(" or ".join(s.alternatives) for s in specs)
    places = ", ".join(str(d) for d in searched)
    target = Path("~/.cache/losslab") / name
    urls = [s.remote.urls[0] for s in specs if s.remote is not None]
    fix = f"mkdir -p {target} && cd {target} && " + " && ".join(f"curl -LO {u}" for u in urls)
    if not urls:
        fix = f"put the files in {target}"
    extra = f" ({how_to.rstrip('.')})" if how_to else ""
    return (
        f"dataset {name!r}: files not found ({files}) in {places}, and {reason}; "
        f"fix: {fix}{extra}"
    )
