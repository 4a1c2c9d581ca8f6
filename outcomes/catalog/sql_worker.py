"""The ad-hoc SQL worker's side (runs in the child process started by outcomes.catalog.sandbox): open the
database read-only with the worker's limits, parse and run one statement at a time, stop it at its time limit,
and answer with a JSON header and the result as Arrow IPC bytes."""

from __future__ import annotations

import os
import threading
import time

from outcomes.catalog import adhoc

NICENESS = 10  # added to the worker's scheduling priority (lower priority than the server)


def serve(channel) -> None:
    """Worker loop: answer one request at a time until the parent closes the pipe."""
    import json

    os.nice(NICENESS)  # a heavy statement yields the CPU to the server's own pages

    import duckdb
    import pyarrow as pa

    from outcomes.ingest import db

    config = json.loads(os.environ.get("OUTCOMES_SANDBOX_CONFIG") or "{}")
    # No temp_directory of its own: DuckDB refuses one once external access is off; it spills beside the
    # database, in the server's private data folder, up to max_temp_directory_size.
    state: dict = {"version": None, "con": None}
    duckdb.connect(":memory:").execute("select 1").fetchall()  # load DuckDB's code now, not on the first call
    pa.BufferOutputStream()
    channel.send({"ready": True, "pid": os.getpid()})
    try:
        while True:
            request, _ = channel.receive()
            header, payload = _answer_one(request, state, config, duckdb, pa, db)
            channel.send(header, payload)
            if header.get("exit"):
                break
    finally:
        if state["con"] is not None:
            state["con"].close()
    os._exit(0)


def _connection(state: dict, version: list, config: dict, db):
    if state["version"] != version:
        if state["con"] is not None:
            state["con"].close()
            state["con"] = state["version"] = None
        state["con"] = db.open_version(db.DataVersion(*version), extra=config)
        state["version"] = version
    return state["con"]


def _answer_one(request: dict, state: dict, config: dict, duckdb, pa, db) -> tuple[dict, bytes]:
    started = time.monotonic()
    timeout, max_rows = request["timeout"], request["max_rows"]
    holder: dict = {}
    stopped = threading.Event()

    def interrupt():
        stopped.set()
        cur = holder.get("cur")
        if cur is not None:
            cur.interrupt()

    timer = threading.Timer(timeout, interrupt)
    timer.start()
    try:
        text = adhoc.statement(request["sql"])
        if request.get("version") is None:
            return {
                "error": "failed",
                "message": f"no database at {request['db']}; load one with "
                "`python -m outcomes load DIR` or `python -m outcomes demo`",
            }, b""
        con = _connection(state, request["version"], config, db)
        cur = holder["cur"] = con.cursor()
        if stopped.is_set():
            raise duckdb.InterruptException("stopped before it started")
        rel = cur.sql(text)
        types = [str(t) for t in rel.types]
        columns = list(rel.columns)
        reader = rel.to_arrow_reader(2048)
        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > max_rows:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, max_rows)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        if data.size > request["max_bytes"]:
            return {"error": "too_large", "bytes": data.size}, b""
        return {
            "ok": True,
            "sql": text,
            "types": types,
            "columns": columns,
            "truncated": rows > max_rows,
            "rows": table.num_rows,
            "seconds": time.monotonic() - started,
        }, data.to_pybytes()
    except adhoc.Refused as exc:
        return {"error": "refused", "message": str(exc)}, b""
    except adhoc.QueryFailed as exc:
        return {"error": "failed", "message": str(exc)}, b""
    except duckdb.InterruptException:
        return {"error": "timeout", "seconds": time.monotonic() - started}, b""
    except (duckdb.OutOfMemoryException, MemoryError):
        return {"error": "memory", "exit": True}, b""
    except db.NoDatabase as exc:
        return {"error": "failed", "message": str(exc)}, b""
    except duckdb.Error as exc:
        if stopped.is_set():
            return {"error": "timeout", "seconds": time.monotonic() - started}, b""
        return {"error": "failed", "message": adhoc.one_line(exc)}, b""
    except Exception as exc:  # an Arrow conversion, or anything else: one line, and a fresh worker after it
        if "memory" in str(exc).lower() or "bad_alloc" in str(exc):
            return {"error": "memory", "exit": True}, b""
        return {
            "error": "failed",
            "message": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            "exit": True,
        }, b""
    finally:
        timer.cancel()
        cur = holder.get("cur")
        if cur is not None:
            try:
                cur.close()
            except Exception:
                pass
