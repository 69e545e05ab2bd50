"""`pulumi-resource-mailroom`: mailroom's own resource provider plugin for the Pulumi engine.

The engine starts it (found on PATH, see ``workspace.EngineSettings.environment``) once per engine
command, reads the port it prints on stdout and calls it over gRPC (the engine's ResourceProvider
service) for every ``mailroom:index:SharedMailbox``. It serves ``provider.MailboxProvider``; unlike the
Python dynamic provider host it replaces, which serves at most 4 calls at once, each with a tenant
client and an event loop of its own, it serves:

- as many calls at once as the engine sends (``--parallel``, see ``workspace.PARALLEL``), each on a
  gRPC handler thread of its own;
- every tenant call on ONE event loop thread, holding ONE ``Tenant`` for the whole run: every mailbox
  shares one pacer, one retry policy, one connection pool and one token per service. A handler thread
  hands its coroutine to that loop (``asyncio.run_coroutine_threadsafe``) and waits for the result;
  the audit log is written on the handler thread, never on the loop.

It dies with the engine: on SIGINT or SIGTERM (how the engine closes its plugins) it stops, and when
the engine is gone (it is re-parented: the engine was killed) it exits at once; ``mailroom-engine``
(``supervise.py``) sweeps whatever is left.

Protocol: no ``Handshake`` (the engine then falls back to ``Configure``), and ``Configure`` answers
``supportsPreview: false``, so a preview never calls Create or Update: what the dynamic provider did.
Inputs and outputs are plain values (no secrets, no resources, no outputs are accepted).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from mailroom.engine.provider import OUTPUT_KEYS, MailboxProvider, tenant_config
from mailroom.engine.tokens import PACKAGE, RESOURCE_TYPE
from mailroom.m365.tenant import Tenant

T = TypeVar("T")
TENANT_CONCURRENCY = 64  # requests in flight on the one tenant client; the pacer sets the rate
WORKERS = 512  # gRPC handler threads: more than the engine's parallelism, so no call ever queues here
POLL = 0.2  # seconds between checks that the engine is still there
STOP_GRACE = 3.0  # seconds in-flight calls get when the engine closes the plugin (it waits 5 s)
STATS_ENV = "MAILROOM_PLUGIN_STATS"  # a file the plugin writes its counters to when it stops (tests, bench)


def _version() -> str:
    try:
        return metadata.version("mailroom")
    except metadata.PackageNotFoundError:
        return "0.1.0"


SCHEMA = {
    "name": PACKAGE,
    "version": _version(),
    "resources": {RESOURCE_TYPE: {
        "description": "One shared mailbox, authoritative for everything the file says about it.",
        "properties": {k: {"type": "string"} for k in OUTPUT_KEYS},
        "required": list(OUTPUT_KEYS),
        "inputProperties": {"address": {"type": "string"}},
        "requiredInputs": ["address"],
    }},
}


@dataclass
class Stats:
    """What the plugin did in this run: calls served, the most at once, tenant clients opened."""

    calls: int = 0
    in_flight: int = 0
    peak: int = 0
    tenants: int = 0


class TenantLoop:
    """One event loop on a thread of its own, holding the run's one ``Tenant``, opened on first use."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.loop = asyncio.new_event_loop()
        self._tenant: Tenant | None = None
        self._opening: asyncio.Lock | None = None
        self._thread = threading.Thread(target=self._run, name="mailroom-tenant-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _open(self) -> Tenant:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._tenant is None:
                tenant = Tenant(tenant_config(), concurrency=TENANT_CONCURRENCY)
                await tenant.__aenter__()
                self._tenant = tenant
                self.stats.tenants += 1
        return self._tenant

    def __call__(self, work: Callable[[Tenant], Awaitable[T]]) -> T:
        """Run ``work`` on the run's tenant, on the loop thread; the calling thread waits for it."""
        async def run() -> T:
            return await work(await self._open())

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()

    def close(self, timeout: float = 2.0) -> None:
        async def aclose() -> None:
            if self._tenant is not None:
                await self._tenant.__aexit__(None, None, None)

        try:
            asyncio.run_coroutine_threadsafe(aclose(), self.loop).result(timeout)
        except Exception:  # noqa: BLE001 - closing connections at exit; nothing is left to tell
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


def _props(struct: struct_pb2.Struct, keep_unknowns: bool = False) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns) or {})


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    """Plain values (text, booleans, lists, mappings: all a mailbox's properties are) as a Struct."""
    out = struct_pb2.Struct()
    out.update(values)
    return out


Handler = Callable[[Any, Any, Any], Any]


def _aborts_with_traceback(fn: Handler) -> Handler:
    """An exception fails the call with its traceback, as the dynamic provider reported it (the CLI
    finds the mailbox and the error in its last line)."""
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception:  # noqa: BLE001 - every failure goes back to the engine, none ends the plugin
            context.abort(grpc.StatusCode.UNKNOWN, traceback.format_exc())

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class Servicer(provider_pb2_grpc.ResourceProviderServicer):
    """The engine's ResourceProvider service, for ``mailroom:index:SharedMailbox`` only."""

    def __init__(self, provider: MailboxProvider, stats: Stats) -> None:
        self.provider = provider
        self.stats = stats
        self._lock = threading.Lock()

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._lock:
            self.stats.calls += 1
            self.stats.in_flight += 1
            self.stats.peak = max(self.stats.peak, self.stats.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.stats.in_flight -= 1

    # -- the plugin and its configuration -------------------------------------------------------------

    def GetPluginInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return plugin_pb2.PluginInfo(version=_version())

    def GetSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.GetSchemaResponse(schema=json.dumps(SCHEMA))

    def CheckConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)  # no configuration: the run's env says it all

    def DiffConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Also asked when a resource moves from the dynamic provider to this one: never a replacement.
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request: Any, context: grpc.ServicerContext) -> Any:
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=False, acceptResources=False,
                                              acceptOutputs=False)

    def Attach(self, request: Any, context: grpc.ServicerContext) -> Any:
        return empty_pb2.Empty()  # started by the engine; nothing to attach to

    def Cancel(self, request: Any, context: grpc.ServicerContext) -> Any:
        # The engine lets calls in flight finish (each mailbox is converged or not at all) and sends no more.
        return empty_pb2.Empty()

    # -- the resource ---------------------------------------------------------------------------------

    @_aborts_with_traceback
    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._call():
            result = self.provider.check(_props(request.olds, True), _props(request.news, True))
            failures = [provider_pb2.CheckFailure(property=f.property, reason=f.reason) for f in result.failures]
            return provider_pb2.CheckResponse(inputs=_struct(dict(result.inputs)), failures=failures)

    @_aborts_with_traceback
    def Diff(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._call():
            result = self.provider.diff(request.id, _props(request.olds, True), _props(request.news, True))
            response = provider_pb2.DiffResponse
            changes = (response.DIFF_UNKNOWN if result.changes is None
                       else response.DIFF_SOME if result.changes else response.DIFF_NONE)
            return response(changes=changes, replaces=list(result.replaces or ()),
                            deleteBeforeReplace=bool(result.delete_before_replace))

    @_aborts_with_traceback
    def Create(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.preview:  # not asked for (supportsPreview: false); never write during a preview
            return provider_pb2.CreateResponse(id="", properties=request.properties)
        with self._call():
            result = self.provider.create(_props(request.properties))
            return provider_pb2.CreateResponse(id=str(result.id), properties=_struct(dict(result.outs or {})))

    @_aborts_with_traceback
    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._call():
            props = _props(request.properties) or _props(request.inputs)
            result = self.provider.read(request.id, props)
            if not result.id:
                return provider_pb2.ReadResponse(id="")  # gone: the engine drops it from state
            return provider_pb2.ReadResponse(id=str(result.id), properties=_struct(dict(result.outs or {})))

    @_aborts_with_traceback
    def Update(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.preview:
            return provider_pb2.UpdateResponse(properties=request.news)
        with self._call():
            result = self.provider.update(request.id, _props(request.olds), _props(request.news))
            return provider_pb2.UpdateResponse(properties=_struct(dict(result.outs or {})))

    @_aborts_with_traceback
    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._call():
            self.provider.delete(request.id, _props(request.properties))
            return empty_pb2.Empty()


def serve(stats: Stats) -> tuple[grpc.Server, int, TenantLoop]:
    """Start the server on a free loopback port; returns it, its port and the tenant loop."""
    tenants = TenantLoop(stats)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="mailroom-rpc"),
                         options=_GRPC_CHANNEL_OPTIONS)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(Servicer(MailboxProvider(tenants), stats), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, tenants


def main(argv: list[str] | None = None) -> int:
    """Serve until the engine closes the plugin or goes away. ``argv``: the engine's address (unused:
    nothing is logged through the engine; stderr is shown by it) and logging flags."""
    stats = Stats()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda _s, _f: stop.set())
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    engine = os.getppid()
    server, port, tenants = serve(stats)
    sys.stdout.write(f"{port}\n")  # the engine reads the port from the first line
    sys.stdout.flush()
    orphaned = False
    while not stop.wait(POLL):
        if os.getppid() != engine:  # the engine is gone (killed): nobody will ever ask for the results
            orphaned = True
            break
    server.stop(0 if orphaned else STOP_GRACE).wait()
    tenants.close()
    stats_file = os.environ.get(STATS_ENV)
    if stats_file:
        with open(stats_file, "w", encoding="utf-8") as fh:
            json.dump(asdict(stats), fh)
    sys.stdout.flush()
    sys.stderr.flush()
    # Handler threads of calls the engine no longer waits for may still block on the loop: do not join them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
