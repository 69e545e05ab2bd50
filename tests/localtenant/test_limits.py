"""Request body size cap: 4 MB (Graph's documented "maximum request length supported is
4MB"; the same for Exchange and the token endpoint). An oversize body is refused with 413 in
the service's envelope from its Content-Length alone, or after 4 MB of a chunked body, and
the connection is closed without reading the rest: the server never buffers it."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CAP = 4 * 1024 * 1024
HUGE = 200 * 1024 * 1024  # what a misbehaving client tries to send
CHUNK = b"a" * (256 * 1024)
# The server may hold a few MB (the cap, socket buffers); nothing near the 200 MB body.
MAX_GROWTH = 40 * 1024 * 1024


def peak_rss(tenant: LocalTenant) -> int:
    """The server process's high-water resident memory, in bytes."""
    assert tenant.proc is not None
    for line in Path(f"/proc/{tenant.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def head(tenant: LocalTenant, path: str, token: str | None, extra: str) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{tenant.port}\r\n{auth}"
            f"Content-Type: application/json\r\n{extra}\r\n").encode()


def exchange(tenant: LocalTenant, data: bytes, *, length: int | None, chunked: bool,
             limit: int = HUGE) -> tuple[bytes, int]:
    """Send a request head, then up to ``limit`` body bytes (as chunks if ``chunked``), while
    reading whatever the server answers. Returns (response bytes, body bytes sent) once the
    server has closed the connection or ``limit`` is sent."""
    sock = socket.create_connection(("127.0.0.1", tenant.port), timeout=30)
    sock.sendall(data)
    sock.setblocking(False)
    response, sent, closed = b"", 0, False
    payload = (b"%x\r\n" % len(CHUNK)) + CHUNK + b"\r\n" if chunked else CHUNK
    pending = b""
    deadline = time.monotonic() + 60
    while not closed and time.monotonic() < deadline:
        want_write = sent < limit
        readable, writable, _ = select.select([sock], [sock] if want_write else [], [], 5)
        if readable:
            try:
                got = sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                got = b""
            response += got
            closed = not got
        if writable and want_write:
            pending = pending or payload
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                closed = True  # the server hung up on the rest of the body
                continue
            pending = pending[n:]
            if not pending:
                sent += len(CHUNK)
        if not want_write and not readable:
            break
    sock.close()
    assert length is None or sent <= length + len(CHUNK)
    return response, sent


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head_part, _, body = response.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def too_large(response: bytes) -> dict[str, str]:
    status, headers, body = parse(response)
    assert status == 413, response[:300]
    assert headers["connection"] == "close"
    return headers | {"body": body.decode()}


def test_content_length_over_the_cap_is_refused_before_the_body(local_tenant: LocalTenant) -> None:
    token = local_tenant.token(EXCHANGE_SCOPE)
    before = peak_rss(local_tenant)
    request = head(local_tenant, f"/adminapi/beta/{local_tenant.tenant_id}/InvokeCommand", token,
                   f"Content-Length: {HUGE}\r\n")
    response, sent = exchange(local_tenant, request, length=HUGE, chunked=False)
    answer = too_large(response)
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "RequestEntityTooLarge" and "4MB" in error["details"][0]["message"]
    assert sent < HUGE // 4  # the server closed instead of reading the rest
    assert peak_rss(local_tenant) - before < MAX_GROWTH
    assert httpx.get(f"{local_tenant.base_url}/_emulator/health").status_code == 200


def test_chunked_body_is_counted_as_it_streams(local_tenant: LocalTenant) -> None:
    token = local_tenant.token(GRAPH_SCOPE)
    before = peak_rss(local_tenant)
    request = head(local_tenant, "/v1.0/$batch", token, "Transfer-Encoding: chunked\r\n")
    response, sent = exchange(local_tenant, request, length=None, chunked=True)
    answer = too_large(response)
    error = json.loads(answer["body"])["error"]
    assert error["code"] == "RequestEntityTooLarge" and set(error["innerError"]) == {
        "date", "request-id", "client-request-id"}
    assert CAP <= sent < HUGE // 4
    assert peak_rss(local_tenant) - before < MAX_GROWTH
    assert httpx.get(f"{local_tenant.base_url}/_emulator/health").status_code == 200


def test_lying_content_length_reads_only_what_it_declared(local_tenant: LocalTenant) -> None:
    """A Content-Length under the cap followed by 200 MB: the declared bytes are the body (not
    JSON: 400 envelope), the rest is not a valid next request (plain 400 from the HTTP layer,
    connection closed). Memory stays flat."""
    token = local_tenant.token(EXCHANGE_SCOPE)
    before = peak_rss(local_tenant)
    request = head(local_tenant, f"/adminapi/beta/{local_tenant.tenant_id}/InvokeCommand", token,
                   f"Content-Length: {CAP}\r\n")
    response, sent = exchange(local_tenant, request, length=None, chunked=False)
    status, _, body = parse(response)
    assert status == 400
    assert json.loads(body.split(b"HTTP/1.1", 1)[0])["error"]["code"] == "BadRequest"
    assert sent < HUGE // 4
    assert peak_rss(local_tenant) - before < MAX_GROWTH
    assert httpx.get(f"{local_tenant.base_url}/_emulator/health").status_code == 200


def test_token_endpoint_and_control_routes_are_capped_too(local_tenant: LocalTenant) -> None:
    for path, check in (
        (f"/{local_tenant.tenant_id}/oauth2/v2.0/token",
         lambda doc: doc["error"] == "invalid_request" and doc["error_description"].startswith("AADSTS")),
        ("/_emulator/profile", lambda doc: doc["error"]["code"] == "RequestEntityTooLarge"),
    ):
        response, _ = exchange(local_tenant, head(local_tenant, path, None, f"Content-Length: {CAP + 1}\r\n"),
                               length=CAP + 1, chunked=False, limit=0)
        assert check(json.loads(too_large(response)["body"]))


def test_a_body_just_under_the_cap_is_read(local_tenant: LocalTenant) -> None:
    padding = "x" * (CAP - 200)
    resp = local_tenant.exchange("Get-Mailbox", Identity="alice@contoso.com", Padding=padding)
    # Read and bound: refused as an unknown parameter, not as too large.
    assert resp.status_code == 400 and "Padding" in resp.json()["error"]["details"][0]["message"]

