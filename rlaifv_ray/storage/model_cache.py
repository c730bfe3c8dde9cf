"""Model folders that live in object storage (s3://..., e.g. a checkpoint in an S3 run directory)
are copied once to a local cache, since from_pretrained reads local folders or hub ids only.

Endpoint, region and credentials come from the standard AWS environment (AWS_ENDPOINT_URL too),
read by pyarrow; nothing here logs or stores them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def local_model(path: str) -> str:
    """Local folders and hub ids pass through; a URI is downloaded (once) and its copy returned."""
    if "://" not in path:
        return path
    from pyarrow.fs import FileSystem, FileType, copy_files

    def download(folder: Path) -> None:
        fs, root = FileSystem.from_uri(path)
        if fs.get_file_info(root).type != FileType.Directory:
            from ..errors import ModelLoadError

            raise ModelLoadError(f"model {path!r}: no such folder")
        copy_files(root, str(folder), source_filesystem=fs)

    return cached_folder("models", path.rstrip("/"), download)


def cached_folder(kind: str, key: str, fill) -> str:
    """RLAIFV_CACHE/KIND/<hash of KEY>, made once by fill(folder). The folder is filled under a
    temporary name and renamed into place, so a crash leaves no half folder and a concurrent
    maker of the same folder wins the race harmlessly."""
    target = cache_dir() / kind / hashlib.sha1(key.encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        return str(target)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        fill(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    (partial / ".complete").touch()
    try:
        os.replace(partial, target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def cache_dir() -> Path:
    return Path(os.environ.get("RLAIFV_CACHE", Path.home() / ".cache" / "rlaifv-ray"))
