"""Prompt import throughput: rows per second and peak memory of `batch_import_prompts` on a JSONL file.

    .venv/bin/python bench/import_throughput.py             # 100,000 rows
    .venv/bin/python bench/import_throughput.py --quick     # 20,000 rows
    .venv/bin/python bench/import_throughput.py --orm       # also time the bulk_create path, for comparison

What it does:
1. creates a throw-away PostgreSQL database (bench.common), migrates it, and creates a draft pairwise batch;
2. writes a JSONL file of N rows into a temp dir: half single prompts, half `messages` conversations (some
   with a system message, 1 to 3 user turns), half of the rows with their two pre-generated responses, some
   with metadata, ids and gold answers; about 1-3 KB per row;
3. imports it in a fresh subprocess (so the setup's memory is not counted) through the real service,
   `annotate.batches.imports.batch_import_prompts`, timing only that call, and reads the child's peak RSS
   from getrusage(RUSAGE_SELF).ru_maxrss (the kernel's high-water mark of the whole process: interpreter,
   Django and the import). A second child that only sets Django up and connects gives the baseline RSS;
4. checks the counts in the database, and drops the database (also on failure or Ctrl-C).

Besides wall time and rows/s, it reports the CPU seconds of the importing process and of its PostgreSQL
backend; `import_cpu_bound_rows_per_s` = rows / max(the two) is what the import would reach on two idle cores
where client and server overlap fully (an upper bound: they overlap only in part).

With --orm a second import into a second batch forces the portable path (`items_add`, bulk_create) so the
two can be compared on the same file.

The machine is shared (2 cores; other test suites and benchmarks run at the same time), so timings are
noisy: compare runs made back to back. The last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.common import (
    BenchSettings,
    create_database,
    drop_database,
    emit_result,
    install_signal_handlers,
    log,
    migrate,
)

FULL_ROWS = 100_000
QUICK_ROWS = 20_000
_TEXT = """the model answer question data safety helpful response explain detail context example python code
function return value list table user assistant prompt train reward policy gradient sample token
length result error fix test run build deploy server client query index cursor stream memory"""
WORDS = _TEXT.split()
STRENGTHS = ("significantly_better", "better", "slightly_better", "negligibly_better_or_unsure")


def _prose(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(6, 16))).capitalize() + "."
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


def make_row(rng: random.Random, n: int) -> dict[str, Any]:
    """One realistic row (1-3 KB as JSON); the row number makes every prompt unique."""
    row: dict[str, Any] = {}
    if rng.random() < 0.5:
        row["prompt"] = f"[{n}] " + _prose(rng, rng.randint(300, 1500))
    else:
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": _prose(rng, rng.randint(60, 200))})
        turns = rng.randint(1, 3)
        for turn in range(turns):
            messages.append({"role": "user", "content": f"[{n}.{turn}] " + _prose(rng, rng.randint(80, 400))})
            if turn < turns - 1:
                messages.append({"role": "assistant", "content": _prose(rng, rng.randint(100, 500))})
        row["messages"] = messages
    with_responses = rng.random() < 0.5
    if with_responses:
        row["responses"] = [
            {"model": f"llama-2-{size}b-chat", "content": _prose(rng, rng.randint(300, 1200))}
            for size in rng.sample((7, 13, 70), 2)
        ]
        if rng.random() < 0.02:
            row["gold"] = {"preferred": rng.randint(0, 1), "min_strength": rng.choice(STRENGTHS)}
    if rng.random() < 0.5:
        row["metadata"] = {"source": rng.choice(("support", "forum", "synthetic")), "lang": "en", "n": n}
    if rng.random() < 0.7:
        row["id"] = f"row-{n}"
    return row


def write_jsonl(path: Path, rows: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    with_responses = 0
    with path.open("wb") as out:
        for n in range(rows):
            row = make_row(rng, n)
            with_responses += "responses" in row
            out.write(orjson.dumps(row) + b"\n")
    size = path.stat().st_size
    return {
        "rows": rows,
        "bytes": size,
        "bytes_per_row": round(size / rows),
        "with_responses": with_responses,
    }


_SETUP = """
from annotate.batches.models import Batch
ids = [Batch.objects.create(name=f"import bench {i}", track="helpfulness", mode="pairwise",
                            responses_per_item=2, overlap=3, status="draft").pk for i in range(2)]
print(ids[0], ids[1])
"""

_BASELINE = """
import resource
from django.db import connection
connection.ensure_connection()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_IMPORT = """
import json, os, resource, sys, time
from django.db import connection
from annotate.batches import imports
from bench.common import pids_cpu_seconds

batch_id, path, force_orm = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
if force_orm:
    from annotate.batches.services import items_add
    from annotate.batches.models import ItemSource
    imports.items_insert = lambda *, batch, rows, created_by: items_add(
        batch=batch, new_items=rows, source=ItemSource.IMPORTED, created_by=created_by)
with connection.cursor() as cursor:  # the backend that will run the import: its CPU is the server's share
    cursor.execute("SELECT pg_backend_pid()")
    backend = cursor.fetchone()[0]
server0, client0 = pids_cpu_seconds([backend])[backend], os.times()
with open(path, "rb") as stream:
    t0 = time.perf_counter()
    report = imports.batch_import_prompts(batch_id=batch_id, stream=stream, user=None)
    seconds = time.perf_counter() - t0
server1, client1 = pids_cpu_seconds([backend])[backend], os.times()
print(json.dumps({"seconds": seconds, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "client_cpu_s": client1.user + client1.system - client0.user - client0.system,
                  "server_cpu_s": server1 - server0,
                  "report": {k: v for k, v in report.as_dict().items() if k != "errors"},
                  "errors": report.as_dict()["errors"][:5]}))
"""

_COUNTS = """
import sys
from annotate.batches.models import Item, Response
batch_id = int(sys.argv[1])
items = Item.objects.filter(batch_id=batch_id)
responses = Response.objects.filter(item__batch_id=batch_id)
print(items.count(), items.filter(status="ready").count(), responses.count())
"""


def _run(settings: BenchSettings, code: str, *args: str) -> str:
    # run_django passes no argv; prepend it here so the snippets can read their arguments.
    prelude = f"import sys\nsys.argv = ['bench', *{list(args)!r}]\n"
    return settings.run_django(prelude + code)


def _import(settings: BenchSettings, batch_id: int, path: Path, rows: int, *, orm: bool) -> dict[str, Any]:
    out = json.loads(
        _run(settings, _IMPORT, str(batch_id), str(path), "1" if orm else "0").strip().splitlines()[-1]
    )
    report = out["report"]
    if report["refused"] or report["created"] != rows:
        raise RuntimeError(f"import did not create {rows} items: {report} {out['errors']}")
    items, ready, responses = map(int, _run(settings, _COUNTS, str(batch_id)).split())
    if items != rows or responses != 2 * ready:
        raise RuntimeError(f"database holds {items} items, {ready} ready, {responses} responses")
    return {
        "seconds": round(out["seconds"], 2),
        "rows_per_s": round(rows / out["seconds"]),
        "peak_rss_mb": round(out["maxrss_kb"] / 1024, 1),
        "client_cpu_s": round(out["client_cpu_s"], 2),
        "server_cpu_s": round(out["server_cpu_s"], 2),
        "items_ready": ready,
        "responses": responses,
    }


def run_import_bench(rows: int, *, compare_orm: bool = False) -> dict[str, Any]:
    """Import `rows` generated rows into a fresh database; returns rows/s and the importer's peak RSS."""
    name = f"annotate_bench_import_{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="annotate_import_bench_"))
    settings: BenchSettings | None = None
    try:
        log(f"creating database {name}")
        url = create_database(name)
        settings = BenchSettings(url, redis_url=None)
        migrate(settings)
        fast_batch, orm_batch = map(int, _run(settings, _SETUP).split())
        path = workdir / "prompts.jsonl"
        log(f"writing {rows:,} rows to {path}")
        file_info = write_jsonl(path, rows)
        log(f"file: {file_info['bytes'] / 1e6:.1f} MB, {file_info['bytes_per_row']} bytes/row")
        baseline_kb = int(_run(settings, _BASELINE).strip().splitlines()[-1])
        log("importing (COPY path on PostgreSQL)")
        fast = _import(settings, fast_batch, path, rows, orm=False)
        log(f"  {fast}")
        result: dict[str, Any] = {
            "benchmark": "import_throughput",
            "import_rows": rows,
            "import_rows_per_s": fast["rows_per_s"],
            "import_peak_rss_mb": fast["peak_rss_mb"],
            "import_seconds": fast["seconds"],
            # CPU seconds of the importing process and of its PostgreSQL backend: on a shared machine these
            # say more than the wall time (which includes waiting for a core).
            "import_client_cpu_s": fast["client_cpu_s"],
            "import_server_cpu_s": fast["server_cpu_s"],
            "import_cpu_bound_rows_per_s": round(rows / max(fast["client_cpu_s"], fast["server_cpu_s"])),
            "import_baseline_rss_mb": round(baseline_kb / 1024, 1),
            "import_file_mb": round(file_info["bytes"] / 1e6, 1),
            "import_bytes_per_row": file_info["bytes_per_row"],
            "import_items_ready": fast["items_ready"],
            "import_responses": fast["responses"],
            "cores": os.cpu_count(),
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        }
        if compare_orm:
            log("importing again through the bulk_create path (items_add)")
            orm = _import(settings, orm_batch, path, rows, orm=True)
            log(f"  {orm}")
            result.update(
                import_orm_rows_per_s=orm["rows_per_s"],
                import_orm_peak_rss_mb=orm["peak_rss_mb"],
                import_orm_seconds=orm["seconds"],
                import_orm_client_cpu_s=orm["client_cpu_s"],
                import_orm_server_cpu_s=orm["server_cpu_s"],
            )
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        log(f"dropping database {name}")
        drop_database(name)
        if settings is not None:
            settings.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, help="number of rows (overrides --quick)")
    parser.add_argument("--orm", action="store_true", help="also time the bulk_create path")
    args = parser.parse_args()
    install_signal_handlers()
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    emit_result(run_import_bench(rows, compare_orm=args.orm))


if __name__ == "__main__":
    main()
