import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rlaifv_ray import schema as S
from rlaifv_ray.errors import InputError
from rlaifv_ray.inputs import read_chunks, read_prompts
from rlaifv_ray.storage.store import RunStore


def test_parts_are_named_by_their_ids_so_a_retry_overwrites(tmp_path):
    store = RunStore(str(tmp_path / "run"))
    t = pa.table({"x": [1, 2]})
    store.write_part("iter_000/stage", t, ["b", "a"])
    store.write_part("iter_000/stage", t, ["a", "b"])  # the same batch retried
    store.write_part("iter_000/stage", t, ["c"])
    assert len(store.files("iter_000/stage")) == 2 and store.count_rows("iter_000/stage") == 4
    assert not store.finished("iter_000/stage", "h1")
    assert store.mark_finished("iter_000/stage", "h1")["rows"] == 4
    assert store.finished("iter_000/stage", "h1") and not store.finished("iter_000/stage", "other-config")
    store.clear("iter_000/stage")
    assert store.files("iter_000/stage") == [] and not store.finished("iter_000/stage", "h1")


def _png():
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


def test_inputs_folder_parquet_jsonl_and_toy(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "b.png").write_bytes(_png())
    (folder / "a.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored")
    from rlaifv_ray.config import DataConfig

    rows = read_prompts(str(folder), data=DataConfig(default_instruction="What is this?"))
    assert [r[S.PROMPT_ID] for r in rows] == ["a.jpg", "b.png"]
    assert {r[S.INSTRUCTION] for r in rows} == {"What is this?"}

    pq.write_table(pa.table({"id": ["x"], "image": [_png()], "instruction": ["Describe."]}), tmp_path / "p.parquet")
    assert read_prompts(str(tmp_path / "p.parquet"))[0][S.PROMPT_ID] == "x"

    toy = read_prompts("toy:5", iteration=1, seed=0)
    assert len(toy) == 5 and all(r[S.TRUTH] for r in toy)
    assert {r[S.PROMPT_ID] for r in toy}.isdisjoint(r[S.PROMPT_ID] for r in read_prompts("toy:5", iteration=0))


def test_inputs_read_in_chunks_are_the_whole_input_in_order(tmp_path):
    """The prompts step reads its input a chunk at a time (its images only then): chunks of at most
    SIZE rows that concatenate to the whole input, for every kind of input."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    lines = []
    for i in range(7):
        (folder / f"{i}.png").write_bytes(_png())
        lines.append(json.dumps({"image": f"imgs/{i}.png", "instruction": f"q{i}"}))
    (tmp_path / "p.jsonl").write_text("\n".join(lines + ['{"image": "imgs/none.png", "instruction": "x"}']))
    table = pa.table({"image": [_png()] * 7, "instruction": [f"q{i}" for i in range(7)]})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=2)
    for spec in ("toy:7", str(folder), str(tmp_path / "p.jsonl"), str(tmp_path / "p.parquet")):
        chunks = list(read_chunks(spec, size=3))
        assert [len(c) for c in chunks][:2] == [3, 3] and sum(map(len, chunks)) == len(read_prompts(spec)), spec
        assert [r for c in chunks for r in c] == read_prompts(spec), spec
    assert sum(bool(r[S.ERROR]) for r in read_prompts(str(tmp_path / "p.jsonl"))) == 1
    assert [r[S.PROMPT_ID] for r in read_prompts(str(tmp_path / "p.parquet"))][-1] == "p.parquet:6"
    with pytest.raises(InputError, match="at least one"):
        read_chunks("toy:0")  # the spec is checked before the first chunk is asked for


def test_input_spec_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "a.png", "instruction": "x"}\nnot json\n["list"]\n')
    with pytest.raises(InputError, match="2 bad line"):
        read_prompts(str(bad))
    with pytest.raises(InputError, match="toy:N"):
        read_prompts("toy:abc")
    with pytest.raises(InputError, match="not toy:N"):
        read_prompts(str(tmp_path / "nothing.csv"))
    pq.write_table(pa.table({"picture": [b""]}), tmp_path / "q.parquet")
    with pytest.raises(InputError, match="missing column"):
        read_prompts(str(tmp_path / "q.parquet"))
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"image": "missing.png", "instruction": "x"}) + "\n")
    row = read_prompts(str(ok))[0]
    assert row[S.ERROR] and "missing.png" in row[S.ERROR]  # kept, with its reason, for quarantine


def test_unreachable_storage_is_recognised_in_chains_and_remote_tracebacks():
    from rlaifv_ray.errors import unreachable_reason

    try:
        try:
            raise OSError("When creating key 'k': AWS Error NETWORK_CONNECTION during PutObject operation")
        except OSError as inner:
            raise RuntimeError("stage failed") from inner
    except RuntimeError as outer:
        assert (
            unreachable_reason(outer)
            == "When creating key 'k': AWS Error NETWORK_CONNECTION during PutObject operation"
        )
    remote = RuntimeError(
        "ray::MapWorker.submit()\n  File \"x.py\", line 1\nOSError: When reading 'k': Connection refused\n"
    )
    assert unreachable_reason(remote) == "When reading 'k': Connection refused"
    assert unreachable_reason(OSError("AWS Error ACCESS_DENIED")) is None  # not a connection problem
    assert unreachable_reason(ValueError("Connection refused")) is None  # only OSErrors count


def test_http_images_are_fetched_with_retries_a_timeout_and_a_size_cap(tmp_path):
    """A real HTTP server on loopback: every failure is the row's reason, naming the URL and the cause."""
    import socket

    from rlaifv_ray.storage.image_refs import fetch_all
    from tests.http_images import image_server

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/x.png"
    with image_server(_png(), slow_s=3.0, big=4096) as (url, hits):
        names = ["ok", "flaky", "missing", "slow", "down", "huge", "huge-chunked"]
        got = dict(
            zip(
                names + ["refused"],
                fetch_all([f"{url}/{n}.png" for n in names] + [refused], "p.jsonl", 2048, read_timeout=1.0),
            )
        )
    assert got["ok"] == (_png(), None) and got["flaky"] == (_png(), None) and hits["/flaky.png"] == 3
    assert got["missing"] == (b"", f"image {url}/missing.png: HTTP 404 Not Found")
    assert got["down"] == (b"", f"image {url}/down.png: HTTP 503 Service Unavailable after 3 retries")
    assert hits["/down.png"] == 4 and hits["/missing.png"] == 1  # 5xx retried, 4xx not
    assert got["slow"][1].startswith(f"image {url}/slow.png: timed out after 3 retries")
    assert got["huge"][1] == f"image {url}/huge.png: 4096 bytes, over data.max_image_bytes (2048)"
    assert got["huge-chunked"][1] == f"image {url}/huge-chunked.png: over data.max_image_bytes (2048)"
    assert got["refused"] == (b"", f"image {refused}: connection refused after 3 retries")


def test_an_unreachable_image_store_stops_the_read_naming_the_input_and_the_store():
    """A store-level outage (nothing listens at the endpoint) is not one bad row: one StorageError
    naming the prompt file and the store, never the run directory."""
    from rlaifv_ray.errors import StorageError
    from rlaifv_ray.storage.image_refs import fetch_all

    dead = "s3://images/a.png?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1"
    with pytest.raises(StorageError, match=r"input p.jsonl: the store of its images \(s3://images\) cannot be reached"):
        fetch_all([dead], "p.jsonl", 1 << 20, 1.0)


def test_benchmark_images_and_path_only_pairs_are_fetched_over_http(tmp_path):
    from rlaifv_ray import schema as S
    from rlaifv_ray.config import BenchmarkConfig
    from rlaifv_ray.errors import ConfigError
    from rlaifv_ray.pipeline.benchmark_answers import _stage_images
    from rlaifv_ray.preference_data import SOURCE
    from rlaifv_ray.stages.import_pairs import ImportPairs
    from rlaifv_ray.storage.store import RunStore
    from tests.http_images import image_server

    store = RunStore(str(tmp_path / "run"))
    with image_server(_png()) as (url, _):
        bench = BenchmarkConfig(kind="pope", path="p.jsonl", image_root=url)
        ids = _stage_images(store, bench, ["ok.png"])
        assert store.read_bytes(f"benchmarks/images/{ids['ok.png']}") == _png()
        with pytest.raises(ConfigError, match=r"1 image\(s\) missing under http.* \(e.g. nope.png: .*HTTP 404"):
            _stage_images(store, bench, ["ok.png", "nope.png"])
        pairs = ImportPairs("rlaifv")(  # rlaifv-format pairs whose images are given only by URL
            {
                SOURCE: ["f#0", "f#1"],
                "image": [{"bytes": None, "path": f"{url}/ok.png"}, {"bytes": None, "path": f"{url}/nope.png"}],
                "question": ["Describe."] * 2,
                "chosen": ["A red circle."] * 2,
                "rejected": ["A blue square."] * 2,
            }
        )
        assert (pairs[S.IMAGE][0], pairs[S.ERROR][0]) == (_png(), None)
        assert "HTTP 404" in pairs[S.ERROR][1]


def test_pairs_written_before_a_column_existed_read_it_as_nulls(tmp_path):
    """A run of an older version resumes: its pairs lack the reference sums added since (nullable),
    which read as nulls."""
    import pyarrow as pa

    from rlaifv_ray import schema as S
    from rlaifv_ray.storage.store import RunStore

    store = RunStore(str(tmp_path))
    new = {S.REF_CHOSEN_EDITED_LOGP, S.REF_REJECTED_EDITED_LOGP, S.REF_CHOSEN_CORRUPT_LOGP}
    schema = S.schema("pairs")
    old = pa.schema([f for f in schema if f.name not in new])
    row = {f.name: ["x"] if f.type == pa.string() else [None] for f in old}
    row[S.TRUTH] = [["cat"]]
    store.write_part("iter_000/pairs", pa.table(row, schema=old), ["p0"])
    table = store.read_table("iter_000/pairs", schema)
    assert table.schema == schema and table.num_rows == 1
    assert all(table[c].to_pylist() == [None] for c in new) and table[S.TRUTH].to_pylist() == [["cat"]]
    assert store.read_table("iter_000/pairs", schema, columns=[S.CHOSEN, S.REF_CHOSEN_CORRUPT_LOGP]).to_pylist() == [
        {S.CHOSEN: "x", S.REF_CHOSEN_CORRUPT_LOGP: None}
    ]
