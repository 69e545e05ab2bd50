"""Run the emulator on uvicorn, binding the socket ourselves so ``--port 0`` works and the
bound port can be written to ``--port-file`` once the server is accepting connections."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from localtenant.app import build_app
from localtenant.context import Emulator
from localtenant.guard import MAX_HEADER_BYTES, MAX_URL_BYTES
from localtenant.store import make_private_dirs

# What the HTTP layer (h11) buffers of a request line and headers that have not fully
# arrived. Above the guard's own limits, so requests just over those still reach the guard
# and get the service's envelope; beyond this uvicorn answers a plain 400 and closes, like a
# real front door does for an absurd header block.
H11_MAX_HEADER_BUFFER = 2 * (MAX_HEADER_BYTES + MAX_URL_BYTES)


def _log_to_stderr() -> None:
    """Tracebacks of unexpected errors (guard.py) go to stderr next to uvicorn's messages."""
    logger = logging.getLogger("localtenant")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("localtenant: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it Nagle + delayed ACK add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # Lets restart() rebind the same port while old connections sit in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _write_port_file(path: str, port: int) -> None:
    # Write then rename, so a fixture polling the file never reads a half-written number.
    target = Path(path)
    make_private_dirs(target.parent)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, target)


def serve(emu: Emulator, host: str, port: int, port_file: str | None) -> None:
    _log_to_stderr()
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(emu), log_level="warning", access_log=False, lifespan="off",
        # Clients keep pooled connections between calls; 5 s (uvicorn's default) drops them
        # mid-benchmark and makes clients pay reconnects the real service would not charge.
        timeout_keep_alive=75, backlog=4096, h11_max_incomplete_event_size=H11_MAX_HEADER_BUFFER,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            display = f"[{host}]" if ":" in host else host
            print(f"localtenant: serving tenant {emu.tenant.id} ({emu.tenant.initial_domain}) on "
                  f"http://{display}:{bound} (state {emu.store.path})", file=sys.stderr, flush=True)
            if port_file:
                _write_port_file(port_file, bound)
        await task

    try:
        asyncio.run(main())
    finally:
        emu.store.close()
