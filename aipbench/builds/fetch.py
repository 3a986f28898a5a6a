"""Getting a build archive to this machine: a plain path or ``file://`` as it is; ``http(s)://`` through pooch
(its retries, its hash check, its atomic placement into the downloads folder), with a downloader that resumes a
dropped transfer by HTTP Range from the bytes already received and shows a progress bar."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from aipbench.errors import InputError

__all__ = ["RESUMES", "ResumingDownloader", "fetch"]

RESUMES = 8  # times one download picks up where a dropped connection left it


class ResumingDownloader:
    """A pooch downloader that keeps what it received in ``<downloads>/<url hash>.part`` and, when the connection
    drops, asks for the rest (``Range: bytes=N-``); a server that ignores Range sends it all again."""

    def __init__(self, partial: Path, *, progressbar: bool, timeout: float = 60.0) -> None:
        self.partial, self.progressbar, self.timeout = partial, progressbar, timeout

    def __call__(self, url: str, output_file, pooch=None, check_only: bool = False):
        import requests

        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        total, bar = None, None
        for attempt in range(RESUMES + 1):
            have = self.partial.stat().st_size if self.partial.exists() else 0
            try:
                with requests.get(url, stream=True, timeout=self.timeout,
                                  headers={"Range": f"bytes={have}-"} if have else {}) as response:
                    if response.status_code == 416 and total is not None and have >= total:
                        break  # everything is here already
                    response.raise_for_status()
                    if response.status_code != 206:
                        have = 0  # the whole file again
                    total = have + int(response.headers.get("Content-Length", 0)) or None
                    if bar is None and self.progressbar:
                        from tqdm import tqdm

                        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=Path(urlparse(url).path).name)
                    with open(self.partial, "ab" if have else "wb") as out:
                        for block in response.iter_content(chunk_size=1 << 20):
                            out.write(block)
                            if bar is not None:
                                bar.update(len(block))
                if total is None or self.partial.stat().st_size >= total:
                    break
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
                if attempt == RESUMES:
                    raise
                time.sleep(min(2 ** attempt * 0.1, 5))
        if bar is not None:
            bar.close()
        self.partial.replace(output_file)  # pooch checks the hash and puts it in place (a bad one is deleted)


def fetch(source: str, *, sha256: str | None, downloads: Path, progressbar: bool = True) -> Path:
    """A local file holding ``source`` (a path, ``file://`` or ``http(s)://``), checked against ``sha256`` where one
    is given; one-line errors."""
    from aipbench.hashing import sha256_file

    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        import pooch
        import requests

        downloads.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        name = f"{key}-{Path(unquote(parsed.path)).name or 'build.tar'}"
        getter = pooch.create(path=downloads, base_url="", registry={name: f"sha256:{sha256}" if sha256 else None},
                              urls={name: source}, retry_if_failed=2)
        partial = downloads / f"{name}.part"
        try:
            return Path(getter.fetch(name, downloader=ResumingDownloader(partial, progressbar=progressbar)))
        except (ValueError, requests.RequestException) as err:  # pooch's hash mismatch, or the network
            partial.unlink(missing_ok=True)
            if not any(downloads.iterdir()):
                downloads.rmdir()
            if isinstance(err, ValueError):
                raise InputError(f"{source}: the downloaded archive's SHA-256 is not {sha256}") from None
            raise InputError(f"{source}: could not be downloaded ({type(err).__name__}: {str(err)[:160]})") from None
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(source)
    if parsed.scheme not in ("", "file") or not path.is_file():
        raise InputError(f"{source}: no such build archive (a file, file:// or http(s):// URL)")
    if sha256 and sha256_file(path) != sha256:
        raise InputError(f"{source}: its SHA-256 is not {sha256} (another or a damaged archive)")
    return path
