"""Team state on Azure Blob Storage: an append-only log, JSON documents, and a leased lock.

Layout under ``<container>/<prefix>/<stack>/``: ``audit/000001.jsonl`` ... (append blobs; a new segment
when one nears Azure's 50,000-block limit), ``drift.json`` (a block blob written with If-Match on its
ETag) and ``lock`` (a blob whose lease is the stack lock; its metadata names the holder).

Concurrency: every append is conditional on the position it was computed for (``appendpos``), so two
writers can never interleave or chain onto the same line: the loser reads the new tail and tries again.
A lease has a bounded duration (15-60 s, Azure's limits) and is renewed while the holder runs, so a
killed run's lock expires with its lease. No credential is ever part of a URL, message or entry.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import IO, Any
from urllib.parse import parse_qs, urlparse

from mailroom import paths

MAX_BLOCK = 4 * 1024 * 1024  # bytes per append block (Azure's limit for older service versions)
MAX_BLOCKS = 49_000  # blocks per segment: Azure refuses the 50,001st append to one blob
MAX_ATTEMPTS = 200  # conditional-write retries before giving up (each one lost a race to another writer)
DEFAULT_LEASE = 60


class StoreError(Exception):
    """The store is misconfigured or unreachable."""


@dataclass(frozen=True)
class Holder:
    """Who holds a stack lock."""

    user: str
    host: str
    run_id: str
    command: str
    since: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} (run {self.run_id}, {self.command}) since {self.since}"


class StackLocked(Exception):
    def __init__(self, stack: str, holder: Holder | None) -> None:
        who = holder.describe() if holder else "another run"
        super().__init__(f"stack {stack} is locked by {who}")
        self.stack, self.holder = stack, holder


@dataclass(frozen=True)
class StoreUrl:
    container: str
    prefix: str
    lease: int

    @classmethod
    def parse(cls, url: str) -> StoreUrl:
        parsed = urlparse(url)
        if parsed.scheme != "azblob" or not parsed.netloc:
            raise StoreError(f"{paths.STORE_ENV}: expected azblob://<container>[/<prefix>], got {url!r}")
        query = parse_qs(parsed.query)
        # Only `lease`: a SAS token or key in the URL would be a secret in every message and log.
        unknown = set(query) - {"lease"}
        if unknown:
            raise StoreError(f"{paths.STORE_ENV}: unknown parameter(s) {', '.join(sorted(unknown))}; credentials "
                             f"come from {paths.AZURE_STORAGE_CONNECTION_STRING_ENV} or DefaultAzureCredential")
        lease = int(query.get("lease", [str(DEFAULT_LEASE)])[0])
        if not 15 <= lease <= 60:
            raise StoreError(f"{paths.STORE_ENV}: lease must be 15 to 60 seconds (Azure's limits), got {lease}")
        return cls(parsed.netloc, parsed.path.strip("/"), lease)

    def key(self, stack: str, name: str) -> str:
        return "/".join(part for part in (self.prefix, stack, name) if part)


def service(env: Mapping[str, str] = os.environ) -> Any:
    """A BlobServiceClient: the connection string when set (Azurite), else the account and
    DefaultAzureCredential (workload identity in CI)."""
    from azure.storage.blob import BlobServiceClient

    conn = env.get(paths.AZURE_STORAGE_CONNECTION_STRING_ENV)
    if conn:
        return BlobServiceClient.from_connection_string(conn)
    account = env.get(paths.AZURE_STORAGE_ACCOUNT_ENV)
    if not account:
        raise StoreError(f"{paths.STORE_ENV} names Azure Blob Storage: set {paths.AZURE_STORAGE_ACCOUNT_ENV} "
                         f"(with workload identity or az login) or {paths.AZURE_STORAGE_CONNECTION_STRING_ENV}")
    from azure.identity import DefaultAzureCredential

    domain = env.get(paths.AZURE_STORAGE_DOMAIN_ENV) or "blob.core.windows.net"
    return BlobServiceClient(f"https://{account}.{domain}", credential=DefaultAzureCredential())


class BlobStore:
    def __init__(self, url: str, env: Mapping[str, str] = os.environ, *, max_blocks: int = MAX_BLOCKS) -> None:
        self.url = url
        self.where = StoreUrl.parse(url)
        self.container = service(env).get_container_client(self.where.container)
        self.max_blocks = max_blocks
        self._ensure_container()

    def _ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self.container.create_container()
        except ResourceExistsError:
            pass

    def log(self, stack: str) -> AppendLog:
        return AppendLog(self.container, self.where.key(stack, "audit"), self.max_blocks)

    def document(self, stack: str, name: str) -> JsonDocument:
        return JsonDocument(self.container.get_blob_client(self.where.key(stack, name)))

    def lock(self, stack: str) -> LeaseLock:
        return LeaseLock(self.container.get_blob_client(self.where.key(stack, "lock")), stack, self.where.lease)


def _conflict(exc: Exception) -> bool:
    code = str(getattr(exc, "error_code", "") or "")
    return getattr(exc, "status_code", None) in (409, 412) and (
        "Condition" in code or "AppendPosition" in code or "APPEND_POSITION" in code or "BlobAlreadyExists" in code
        or "BLOB_ALREADY_EXISTS" in code or "CONDITION" in code)


class AppendLog:
    """One log in segments (append blobs); appends conditional on their position."""

    def __init__(self, container: Any, prefix: str, max_blocks: int) -> None:
        self.container, self.prefix, self.max_blocks = container, prefix, max_blocks

    def segments(self) -> list[str]:
        return sorted(b.name for b in self.container.list_blobs(name_starts_with=self.prefix + "/")
                      if b.name.endswith(".jsonl"))

    def _name(self, number: int) -> str:
        return f"{self.prefix}/{number:06d}.jsonl"

    def _tail(self, segments: list[str]) -> bytes | None:
        """The last line (without its newline) of the last non-empty segment; None for an empty log."""
        for name in reversed(segments):
            blob = self.container.get_blob_client(name)
            size = blob.get_blob_properties().size
            if size == 0:
                continue
            start = size
            data = b""
            while True:
                start = max(0, start - 4096)
                data = blob.download_blob(offset=start, length=size - start).readall()
                if not data.endswith(b"\n"):
                    raise StoreError(f"{name}: the last line is truncated; refusing to append")
                cut = data.rfind(b"\n", 0, len(data) - 1)
                if cut != -1 or start == 0:
                    return data[cut + 1:-1]
        return None

    def append(self, make: Callable[[bytes | None], bytes]) -> None:
        """Append ``make(last line)``: whole lines, chained on the tail they were made from. Retried from
        a fresh tail whenever another writer appended first."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        for _ in range(MAX_ATTEMPTS):
            segments = self.segments()
            if not segments:
                target, size = self._name(1), None
            else:
                props = self.container.get_blob_client(segments[-1]).get_blob_properties()
                full = (getattr(props, "append_blob_committed_block_count", None) or 0) >= self.max_blocks
                number = int(segments[-1].rsplit("/", 1)[-1].split(".")[0])
                target, size = (self._name(number + 1), None) if full else (segments[-1], props.size)
            payload = make(self._tail(segments))
            if len(payload) > MAX_BLOCK:
                raise StoreError("an audit batch over 4 MiB: append it in parts")
            blob = self.container.get_blob_client(target)
            try:
                if size is None:  # a new segment: whoever creates it first wins; the others retry
                    blob.create_append_blob(if_none_match="*")
                    size = 0
                blob.append_block(payload, appendpos_condition=size)
                return
            except (HttpResponseError, ResourceNotFoundError) as exc:
                if _conflict(exc):
                    continue
                raise
        raise StoreError(f"{self.prefix}: could not append after {MAX_ATTEMPTS} attempts (too many writers)")

    def download(self, out: IO[bytes]) -> int:
        """Write the whole log, segment after segment, to ``out``; returns the bytes written."""
        total = 0
        for name in self.segments():
            data = self.container.get_blob_client(name).download_blob().readall()
            out.write(data)
            total += len(data)
        return total


class JsonDocument:
    """A JSON document updated read-modify-write with If-Match on its ETag (retried on a conflict)."""

    def __init__(self, blob: Any) -> None:
        self.blob = blob

    def read(self) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(json.loads(self.blob.download_blob().readall()))
        except ResourceNotFoundError:
            return None

    def update(self, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        for _ in range(MAX_ATTEMPTS):
            try:
                downloaded = self.blob.download_blob()
                current, etag = dict(json.loads(downloaded.readall())), downloaded.properties.etag
            except ResourceNotFoundError:
                current, etag = None, None
            new = change(current)
            body = json.dumps(new, indent=1, sort_keys=True).encode()
            try:
                if etag is None:
                    self.blob.upload_blob(body, overwrite=False)
                else:
                    self.blob.upload_blob(body, overwrite=True, etag=etag,
                                          match_condition=MatchConditions.IfNotModified)
                return new
            except HttpResponseError as exc:
                if exc.status_code in (409, 412):
                    continue
                raise
        raise StoreError("could not update the document after many attempts (too many writers)")


class LeaseLock:
    """The stack lock: a lease on ``<stack>/lock``, renewed by a thread while held."""

    def __init__(self, blob: Any, stack: str, lease: int) -> None:
        self.blob, self.stack, self.lease_seconds = blob, stack, lease

    def holder(self) -> Holder | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            meta = self.blob.get_blob_properties().metadata or {}
        except ResourceNotFoundError:
            return None
        try:
            return Holder(**json.loads(meta.get("holder", "")))
        except (ValueError, TypeError):
            return None

    def _try(self) -> Any:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            self.blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass
        try:
            return self.blob.acquire_lease(lease_duration=self.lease_seconds)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                return None
            raise

    @contextmanager
    def hold(self, holder: Holder, wait: float = 0.0,
             on_wait: Callable[[Holder | None], None] | None = None) -> Iterator[None]:
        deadline = time.monotonic() + wait
        seen: Holder | None = None
        announced = False
        while True:
            lease = self._try()
            if lease is not None:
                break
            current = self.holder()
            if current is not None and current != seen or not announced:
                seen = current
                if time.monotonic() >= deadline:
                    raise StackLocked(self.stack, current)
                if on_wait is not None:
                    on_wait(current)
                announced = True
            if time.monotonic() >= deadline:
                raise StackLocked(self.stack, current)
            time.sleep(1.0)
        self.blob.set_blob_metadata({"holder": json.dumps(asdict(holder))}, lease=lease)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease_seconds / 3):
                try:
                    lease.renew()
                except Exception:  # the lease is lost (e.g. the process was suspended past it): say so at the end
                    lost.set()
                    return

        lost = threading.Event()
        thread = threading.Thread(target=renew, name=f"lease-{self.stack}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            if not lost.is_set():
                try:  # no stale name for the next waiter to read
                    self.blob.set_blob_metadata({}, lease=lease)
                finally:
                    lease.release()

    def break_lease(self) -> Holder | None:
        holder = self.holder()
        from azure.storage.blob import BlobLeaseClient

        BlobLeaseClient(self.blob).break_lease(lease_break_period=0)
        return holder
