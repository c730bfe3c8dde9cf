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

    cache = cache_dir() / "models"
    target = cache / hashlib.sha1(path.rstrip("/").encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        return str(target)
    fs, root = FileSystem.from_uri(path)
    if fs.get_file_info(root).type != FileType.Directory:
        from .errors import ModelLoadError

        raise ModelLoadError(f"model {path!r}: no such folder")
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    copy_files(root, str(partial), source_filesystem=fs)
    (partial / ".complete").touch()
    try:
        os.replace(partial, target)  # atomic: a concurrent download of the same folder wins the race
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return str(target)


def cache_dir() -> Path:
    return Path(os.environ.get("RLAIFV_CACHE", Path.home() / ".cache" / "rlaifv-ray"))
