"""Download one file from its official source, checked against a pinned SHA-256.

The bytes stream into ``<name>.part`` next to the target, are hashed on the way, and are
renamed into place only when the digest matches, so an interrupted or tampered
download never leaves a file that a later run would trust. A rich progress bar shows
the transfer.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from losslab.errors import LosslabError

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public dataset: its name, mirrors (official first), SHA-256 and size."""

    filename: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None


class NetworkUnavailable(Exception):
    """No mirror of a file could be reached (offline machine, firewall, dead URL)."""


def open_url(url: str, timeout: float = 30.0) -> http.client.HTTPResponse:
    """Open ``url`` for reading; the one network entry point, replaced in tests."""
    request = urllib.request.Request(url, headers={"User-Agent": "losslab"})
    return urllib.request.urlopen(request, timeout=timeout)


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def download(remote: RemoteFile, dest_dir: Path, *, progress: bool = True) -> Path:
    """Fetch ``remote`` into ``dest_dir`` and verify its SHA-256; return the file's path.

    Mirrors are tried in order. Raises :class:`NetworkUnavailable` when none answers and
    :class:`LosslabError` when a download completes with the wrong checksum.
    """
    target = dest_dir / remote.filename
    part = dest_dir / (remote.filename + ".part")
    reasons = []
    for url in remote.urls:
        try:
            digest = _stream(url, part, remote, progress)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            part.unlink(missing_ok=True)
            reasons.append(f"{url}: {err}")
            continue
        if digest != remote.sha256:
            part.unlink(missing_ok=True)
            raise LosslabError(
                f"the download of {url} has SHA-256 {digest}, expected {remote.sha256}; "
                "the file was discarded. Retry later or fetch it by hand and check its digest"
            )
        os.replace(part, target)
        return target
    raise NetworkUnavailable("; ".join(reasons))


def _stream(url: str, part: Path, remote: RemoteFile, progress: bool) -> str:
    """Copy ``url`` into ``part`` (created only once the server answers); return its SHA-256."""
    hasher = hashlib.sha256()
    with open_url(url) as response:
        part.parent.mkdir(parents=True, exist_ok=True)
        total = remote.size or int(response.headers.get("Content-Length") or 0) or None
        with open(part, "wb") as out:
            if not progress:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    hasher.update(chunk)
                    out.write(chunk)
                return hasher.hexdigest()
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            columns = (TextColumn(remote.filename), BarColumn(), DownloadColumn())
            with Progress(*columns, TransferSpeedColumn(), transient=True) as bar:
                task = bar.add_task("download", total=total)
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    hasher.update(chunk)
                    out.write(chunk)
                    bar.advance(task, len(chunk))
    return hasher.hexdigest()
