"""Input images by reference, as prompt files name them: local paths, object-store URIs (s3://, any
pyarrow filesystem) and http(s) URLs, fetched in parallel.

A problem of one image (no such object, an HTTP error, a timeout after retries, a body over
data.max_image_bytes) is that row's reason: the row is quarantined and the run goes on. A store
that cannot be reached at all (DNS, a refused endpoint, expired credentials) stops the run with one
StorageError naming the input and the store, not the run directory. HTTP goes through requests
with urllib3's retries (5xx and connection errors, exponential backoff), a connect and a read timeout.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import StorageError, unreachable_reason

HTTP_RETRIES = 3
HTTP_CONNECT_TIMEOUT = 5.0
_SESSIONS = threading.local()  # requests.Session is not shared between threads


def fetch_all(
    refs: list[str | None], source: str, max_bytes: int, read_timeout: float, workers: int = 8
) -> list[tuple[bytes, str | None]]:
    """(bytes, None) or (b"", reason) per reference, in order; raises StorageError for an
    unreachable store (SOURCE: the input that names the images)."""

    def one(ref):
        return fetch(ref, source, max_bytes, read_timeout)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, refs))


def fetch(ref: str | None, source: str, max_bytes: int, read_timeout: float) -> tuple[bytes, str | None]:
    if ref is None or not str(ref).strip():
        return b"", "no image"
    if ref.startswith(("http://", "https://")):
        return _http(ref, max_bytes, read_timeout)
    from pyarrow.fs import FileSystem, LocalFileSystem

    try:
        fs, path = FileSystem.from_uri(ref) if "://" in ref else (LocalFileSystem(), os.path.abspath(ref))
        if (fs.get_file_info(path).size or 0) > max_bytes:
            return b"", f"image {ref}: larger than data.max_image_bytes ({max_bytes})"
        with fs.open_input_stream(path) as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return b"", f"image {ref}: no such file or object"
    except Exception as exc:  # noqa: BLE001 - sorted below: the store's fault or this image's
        reason = unreachable_reason(exc)
        if reason is not None:
            store = ref.split("/", 3)[:3]
            raise StorageError(
                f"input {source}: the store of its images ({'/'.join(store)}) cannot be reached "
                f"({reason}); nothing was sampled, rerun once it is back"
            ) from None
        if "Unrecognized filesystem type" in str(exc):
            return b"", f"image {ref}: unsupported location (local path, s3://, http(s)://)"
        return b"", f"image {ref}: cannot read ({str(exc).splitlines()[0]})"
    if len(data) > max_bytes:
        return b"", f"image {ref}: larger than data.max_image_bytes ({max_bytes})"
    return data, None


def _session():
    session = getattr(_SESSIONS, "session", None)
    if session is None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        retry = Retry(
            total=HTTP_RETRIES,
            connect=HTTP_RETRIES,
            read=HTTP_RETRIES,
            status=HTTP_RETRIES,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        session = requests.Session()
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=retry))
        _SESSIONS.session = session
    return session


def _http(url: str, max_bytes: int, read_timeout: float) -> tuple[bytes, str | None]:
    import requests

    try:
        with _session().get(url, timeout=(HTTP_CONNECT_TIMEOUT, read_timeout), stream=True) as r:
            if r.status_code >= 400:
                tried = f" after {HTTP_RETRIES} retries" if r.status_code >= 500 else ""
                return b"", f"image {url}: HTTP {r.status_code} {r.reason}{tried}"
            if int(r.headers.get("Content-Length") or 0) > max_bytes:
                return b"", f"image {url}: {r.headers['Content-Length']} bytes, over data.max_image_bytes ({max_bytes})"
            data = bytearray()
            for chunk in r.iter_content(1 << 16):
                data += chunk
                if len(data) > max_bytes:  # a server that sends no length, or lies about it
                    return b"", f"image {url}: over data.max_image_bytes ({max_bytes})"
            return bytes(data), None
    except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
        timed_out = isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower()
        if timed_out:
            return b"", (
                f"image {url}: timed out after {HTTP_RETRIES} retries (connect {HTTP_CONNECT_TIMEOUT:g} s, "
                f"read {read_timeout:g} s)"
            )
        refused = "refused" in str(exc).lower()
        return b"", f"image {url}: {'connection refused' if refused else 'cannot connect'} after {HTTP_RETRIES} retries"
    except requests.exceptions.RequestException as exc:
        return b"", f"image {url}: {type(exc).__name__} ({exc})"
