"""A Python child process with a cap on its address space, spoken to in framed JSON messages over pipes.

The parent starts `python -m outcomes.catalog.child MODULE:FUNCTION LIMIT PARENT_PID`. Before importing anything heavy
the child caps its address space (RLIMIT_AS), switches off core dumps (a dump would hold patient data), starts
a thread that ends it when its parent dies, and keeps malloc to one arena (each extra arena reserves 64 MB of address
space per thread); then it calls FUNCTION(channel). Stray output of the child goes to its stderr, never into
the message pipe.

A message is a 4-byte big-endian length, a JSON object of that length, and then `payload` bytes if the object
says so (`"payload": N`). The parent never unpickles anything a child sends: the child runs untrusted SQL or
reads untrusted files, and a JSON header plus raw bytes cannot execute code on the way back.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository, for the child's import path
HEADER_LIMIT = 1 << 20  # largest JSON header a parent accepts
_LEN = struct.Struct(">I")


class ChildDied(Exception):
    """The child ended (killed, crashed, or exited) before it answered."""

    def __init__(self, returncode: int | None, detail: str = ""):
        self.returncode = returncode
        self.detail = detail
        super().__init__(describe_exit(returncode) + (f": {detail}" if detail else ""))

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


class ChildTimeout(Exception):
    """The child did not answer before the deadline (it is still running)."""


class ProtocolError(Exception):
    """The child sent something that is not a well-formed message, or one over the size cap."""


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"ended by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"ended by signal {-returncode}"
    return f"exited with status {returncode}"


def frame(header: dict, payload: bytes = b"") -> bytes:
    if payload:
        header = header | {"payload": len(payload)}
    body = json.dumps(header, separators=(",", ":"), default=str).encode("utf-8")
    return _LEN.pack(len(body)) + body + payload


class Child:
    """One running child; used by one thread at a time."""

    def __init__(self, target: str, address_space: int | None, env: dict | None = None, start_timeout: float = 60.0):
        self.target = target
        self.address_space = address_space
        self._stderr = tempfile.TemporaryFile()
        child_env = dict(os.environ, MALLOC_ARENA_MAX="1", PYTHONUNBUFFERED="1", **(env or {}))
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH")]))
        self.started = time.monotonic()
        # fork+exec through subprocess: no Python code runs in the forked copy of the parent (which may hold
        # DuckDB connections and server threads); the child is a fresh interpreter.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "outcomes.catalog.child", target, str(address_space or 0), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env,
            cwd=ROOT,
            close_fds=True,
            start_new_session=True,
        )
        self._out = self.proc.stdout.fileno()
        self._buf = b""
        try:
            hello, _ = self.receive(time.monotonic() + start_timeout)
        except BaseException:
            self.kill()
            raise
        if not hello.get("ready"):
            self.kill()
            raise ProtocolError(f"child {target} did not start: {hello}")
        self.hello = hello
        self.start_seconds = time.monotonic() - self.started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, header: dict, payload: bytes = b"") -> None:
        try:
            self.proc.stdin.write(frame(header, payload))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise ChildDied(self._wait_briefly(), self.stderr_tail()) from None

    def receive(self, deadline: float | None, max_payload: int | None = None) -> tuple[dict, bytes]:
        """The next message; raises ChildTimeout at `deadline` (monotonic), ChildDied, or ProtocolError."""
        (size,) = _LEN.unpack(self._read(_LEN.size, deadline))
        if size > HEADER_LIMIT:
            raise ProtocolError(f"message header of {size} bytes")
        try:
            header = json.loads(self._read(size, deadline))
        except ValueError:
            raise ProtocolError("message header is not JSON") from None
        if not isinstance(header, dict):
            raise ProtocolError("message header is not an object")
        n = header.get("payload", 0)
        if not isinstance(n, int) or n < 0:
            raise ProtocolError("bad payload length")
        if max_payload is not None and n > max_payload:
            raise ProtocolError(f"payload of {n:,} bytes is over the cap of {max_payload:,}")
        return header, self._read(n, deadline) if n else b""

    def _read(self, n: int, deadline: float | None) -> bytes:
        while len(self._buf) < n:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise ChildTimeout()
            ready, _, _ = select.select([self._out], [], [], wait)
            if not ready:
                raise ChildTimeout()
            chunk = os.read(self._out, max(65536, min(n - len(self._buf), 1 << 24)))
            if not chunk:
                raise ChildDied(self._wait_briefly(), self.stderr_tail())
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _wait_briefly(self) -> int | None:
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def stderr_tail(self, limit: int = 400) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace").strip().replace("\n", " | ")
        except (OSError, ValueError):
            return ""

    def kill(self) -> int | None:
        """SIGKILL the child and reap it; returns its exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        self.close()
        return code

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self._stderr.close()
        except OSError:
            pass


# --- the child's side ---------------------------------------------------------------------------------------


class Channel:
    """The child's end: blocking receive and send on its own copies of stdin and stdout."""

    def __init__(self, rfd: int, wfd: int):
        self._r = os.fdopen(rfd, "rb", buffering=0)
        self._w = os.fdopen(wfd, "wb", buffering=0)

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._r.read(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def receive(self) -> tuple[dict, bytes]:
        (size,) = _LEN.unpack(self._read(_LEN.size))
        header = json.loads(self._read(size))
        n = header.get("payload", 0)
        return header, self._read(n) if n else b""

    def send(self, header: dict, payload: bytes = b"") -> None:
        data = frame(header, payload)
        view = memoryview(data)
        while view:
            written = self._w.write(view)
            view = view[written:]


def _watch_parent(parent: int) -> None:
    # Not PR_SET_PDEATHSIG: it fires when the parent *thread* that started the child ends, and the parent
    # starts children from short-lived threads.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(3)


def _harden(address_space: int, parent: int) -> None:
    import ctypes
    import resource
    import threading

    try:
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX: one arena, not 64 MB of address space per thread
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(3)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if address_space:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))


def main(argv: list[str]) -> None:
    target, address_space, parent = argv[0], int(argv[1]), int(argv[2])
    _harden(address_space, parent)
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # print() and C libraries write to stderr from here on, never into the message pipe
    module_name, func_name = target.split(":")
    import importlib

    func = getattr(importlib.import_module(module_name), func_name)
    try:
        func(Channel(rfd, wfd))
    except (EOFError, BrokenPipeError):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
