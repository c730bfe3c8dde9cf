"""The run directory (local path or s3://...) through pyarrow.fs: stage parquet, manifests, quarantine.

A stage directory is finished iff its `_SUCCESS` manifest exists with the current config hash; a
directory without one is a crashed attempt and is cleared before the stage runs again. Part files
are named by a hash of their row ids, so a retried batch overwrites its own file: no duplicates.

A run made by a sweep (rlaifv_ray/sweep/) lists its sibling runs in RUN/shared_stages.json. A stage
it has not finished, but a sibling has under the same resume key, is copied from there instead of
computed again; its manifest says so (`shared_from`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os

log = logging.getLogger(__name__)

SHARED_STAGES = "shared_stages.json"


def resume_key(*parts) -> str:
    """The key a `_SUCCESS` manifest records: a hash of everything the output depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunStore:
    def __init__(self, root: str):
        from pyarrow.fs import FileSystem, LocalFileSystem

        if "://" in root:
            self.fs, self.root = FileSystem.from_uri(root)
            self.uri = root.rstrip("/")
        else:
            self.fs, self.root = LocalFileSystem(), os.path.abspath(root)
            self.uri = self.root
        self._siblings: list[str] | None = None

    @contextlib.contextmanager
    def reachable(self):
        """Turn 'cannot connect to the store' anywhere below (driver or Ray workers) into one
        message; what was finished is kept, so the same command resumes."""
        from ..errors import RlaifvError, StorageError, unreachable_reason

        try:
            yield self
        except RlaifvError:
            raise
        except Exception as exc:
            reason = unreachable_reason(exc)
            if reason is None:
                raise
            raise StorageError(
                f"storage of the run directory {self.uri} cannot be reached ({reason}). Finished stages "
                "are kept: rerun the same command to resume once it is back."
            ) from None

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def uri_of(self, *parts: str) -> str:
        return "/".join([self.uri, *parts])

    # -- files ------------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        full = self.path(rel)
        self.fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
        tmp = full + ".tmp"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, full)  # readers never see half a manifest

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()

    def exists(self, rel: str) -> bool:
        from pyarrow.fs import FileType

        return self.fs.get_file_info(self.path(rel)).type != FileType.NotFound

    def read_json(self, rel: str):
        from pyarrow.fs import FileType

        if self.fs.get_file_info(self.path(rel)).type != FileType.File:
            return None
        with self.fs.open_input_stream(self.path(rel)) as f:
            return json.loads(f.read())

    def write_json(self, rel: str, obj) -> None:
        self.write_bytes(rel, json.dumps(obj, indent=2, sort_keys=True).encode())

    def upload_dir(self, local_dir: str, rel: str) -> None:
        """Copy a local folder (a saved model) to REL; the caller marks it finished afterwards."""
        from pyarrow.fs import copy_files

        self.fs.create_dir(self.path(rel), recursive=True)
        copy_files(local_dir, self.path(rel), destination_filesystem=self.fs)

    def clear(self, rel: str) -> None:
        from pyarrow.fs import FileType

        if self.fs.get_file_info(self.path(rel)).type == FileType.Directory:
            self.fs.delete_dir(self.path(rel))

    def files(self, rel: str, suffix: str = ".parquet", hidden: bool = False) -> list[str]:
        """REL's files ending in SUFFIX; HIDDEN: with the dot-named ones a write cut off left behind."""
        from pyarrow.fs import FileSelector

        sel = FileSelector(self.path(rel), allow_not_found=True, recursive=False)
        return sorted(
            i.path
            for i in self.fs.get_file_info(sel)
            if i.path.endswith(suffix) and (hidden or not i.path.rsplit("/", 1)[-1].startswith("."))
        )

    # -- parquet ----------------------------------------------------------------------------
    def write_part(self, rel_dir: str, table, ids: list[str]) -> None:
        import pyarrow.parquet as pq

        name = "part-" + hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:20] + ".parquet"
        self.fs.create_dir(self.path(rel_dir), recursive=True)
        tmp = self.path(rel_dir, "." + name)
        pq.write_table(table, tmp, filesystem=self.fs)
        self.fs.move(tmp, self.path(rel_dir, name))

    def read_table(self, rel_dir: str, schema=None, columns: list[str] | None = None):
        """The stage's parquet as one table; `columns` reads only those (parquet is columnar)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if schema is not None and columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        files = self.files(rel_dir)
        if not files:
            return schema.empty_table() if schema is not None else pa.table({})
        if schema is None:
            return pa.concat_tables([pq.read_table(f, filesystem=self.fs, columns=columns) for f in files])
        return pa.concat_tables([self._read_as(f, schema) for f in files])

    def _read_as(self, file: str, schema):
        """FILE's columns of SCHEMA; a nullable column added to the schema after the file was written
        (a run made by an older version) reads as nulls."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        have = set(pq.read_schema(file, filesystem=self.fs).names)
        table = pq.read_table(file, filesystem=self.fs, columns=[c for c in schema.names if c in have])
        for f in schema:
            if f.name not in have and f.nullable:
                table = table.append_column(f, pa.nulls(len(table), f.type))
        return table.select([c for c in schema.names if c in table.column_names]).cast(schema)

    def count_rows(self, rel_dir: str) -> int:
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(self.fs.open_input_file(f)).metadata.num_rows for f in self.files(rel_dir))

    # -- stage manifests --------------------------------------------------------------------
    def finished(self, rel_dir: str, config_hash: str, companions: tuple[str, ...] = ()) -> bool:
        """REL_DIR holds a finished stage of CONFIG_HASH: its own, or one copied now from a sibling
        run of the same sweep that finished it under the same key (with COMPANIONS, files or folders
        outside REL_DIR that belong to it)."""
        manifest = self.read_json(f"{rel_dir}/_SUCCESS")
        if manifest and manifest.get("config_hash") == config_hash:
            return True
        return self._copy_from_sibling(rel_dir, config_hash, companions)

    def mark_finished(self, rel_dir: str, config_hash: str, rows: int | None = None, **extra) -> dict:
        """REL_DIR's manifest, with its ROWS (counted here, part by part, when not given)."""
        rows = self.count_rows(rel_dir) if rows is None else rows
        manifest = {"rows": rows, "config_hash": config_hash, **extra}
        self.write_json(f"{rel_dir}/_SUCCESS", manifest)
        return manifest

    def _copy_from_sibling(self, rel_dir: str, config_hash: str, companions: tuple[str, ...]) -> bool:
        if self._siblings is None:
            self._siblings = [u for u in (self.read_json(SHARED_STAGES) or {}).get("runs", []) if u != self.uri]
        for uri in self._siblings:
            other = RunStore(uri)
            manifest = other.read_json(f"{rel_dir}/_SUCCESS")
            if not manifest or manifest.get("config_hash") != config_hash:
                continue
            parent, name = rel_dir.rsplit("/", 1) if "/" in rel_dir else ("", rel_dir)
            # a stage's quarantined rows and batch timings sit beside it, under the same name
            beside = [f"{parent}/{sub}/{name}".lstrip("/") for sub in ("quarantine", "_timings")]
            for rel in (rel_dir, *beside, *companions):
                self._copy(other, rel)
            rebased = {k: _rebase(v, other.uri, self.uri) for k, v in manifest.items()}
            self.write_json(f"{rel_dir}/_SUCCESS", {**rebased, "shared_from": other.uri_of(rel_dir)})
            log.info(f"{rel_dir}: same resume key as {other.uri_of(rel_dir)}: copied, not computed again")
            return True
        return False

    def _copy(self, other: RunStore, rel: str) -> None:
        from pyarrow.fs import FileType, copy_files

        kind = other.fs.get_file_info(other.path(rel)).type
        if kind == FileType.NotFound:
            return
        self.clear(rel)
        if kind == FileType.Directory:
            self.fs.create_dir(self.path(rel), recursive=True)
        else:
            self.fs.create_dir(self.path(rel).rsplit("/", 1)[0], recursive=True)
        copy_files(other.path(rel), self.path(rel), source_filesystem=other.fs, destination_filesystem=self.fs)
        if kind == FileType.Directory and self.exists(f"{rel}/_SUCCESS"):
            self.fs.delete_file(self.path(rel, "_SUCCESS"))  # written last, by the caller: a crash mid-copy reruns


def _rebase(value, old: str, new: str):
    """A manifest's paths into the sibling run (a checkpoint's uri) as paths into this run."""
    return new + value[len(old) :] if isinstance(value, str) and value.startswith(old + "/") else value
