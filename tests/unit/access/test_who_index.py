"""who and revoke's operation on the local tenant (in this process): one bulk read, managed and unmanaged
mailboxes, grants in the files and outside them; and the pure index's group chains."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from localtenant.identity.grants import set_roles
from localtenant.identity.models import EXCHANGE_AUD, GRAPH_AUD
from mailroom.access.index import IN_FILE, PENDING, UNDECLARED, UNMANAGED, Access, chains, for_person
from mailroom.access.read import Found, PersonNotFound, read_person
from mailroom.access.revoke import revoke
from mailroom.file.edit import read_texts
from mailroom.file.load import load_desired
from mailroom.m365.tenant import Tenant, TenantConfig

from ..conftest import BASE_URL, TenantApp

ADMIN = "trent@contoso.com"
FILE = """\
version: 1
tenant:
  domains: [contoso.com]
mailboxes:
  - address: support@contoso.com
    display_name: Support
    owner: bob@contoso.com
    members:
      - alice@contoso.com
      - bob@contoso.com
    send_as: [bob@contoso.com]
  - address: info@contoso.com
    display_name: Info
    members: [alice@contoso.com]
"""


def test_group_chains_follow_nesting_and_stop_at_cycles() -> None:
    parents = {"p": ["g1"], "g1": ["g2"], "g2": ["g1", "g3"]}  # g1 and g2 contain each other
    assert chains(["p"], parents) == {"p": (), "g1": ("g1",), "g2": ("g2", "g1"), "g3": ("g3", "g2", "g1")}
    grant = Access("a@contoso.com", "member", "G3@contoso.com", True, True, True)
    other = Access("b@contoso.com", "member", "q@contoso.com", True, True, True)
    ident = {"g3@contoso.com": "g3", "q@contoso.com": "q"}.__getitem__
    mine = for_person([grant, other], ["p"], parents, lambda a: ident(a.casefold()), str.upper)
    assert [(a.mailbox, a.via) for a in mine] == [("a@contoso.com", ("G3", "G2", "G1"))]


def test_who_reads_managed_and_unmanaged_mailboxes_in_one_scan(tenant_app: TenantApp, tmp_path: Path) -> None:
    (tmp_path / "mailboxes.yaml").write_text(FILE)
    loaded = load_desired(str(tmp_path / "mailboxes.yaml"))
    assert loaded.desired is not None, loaded.findings

    async def run() -> Found:
        for name in ("support", "info", "marketing"):
            await tenant_app.by_hand(ADMIN, "New-Mailbox", Shared=True, Name=name, DisplayName=name,
                                     PrimarySmtpAddress=f"{name}@contoso.com")
        for box, user in (("support", "alice"), ("support", "bob"), ("info", "alice"), ("info", "bob")):
            await tenant_app.by_hand(ADMIN, "Add-MailboxPermission", Identity=f"{box}@contoso.com",
                                     User=f"{user}@contoso.com", AccessRights=["FullAccess"])
        await tenant_app.by_hand(ADMIN, "Add-RecipientPermission", Identity="marketing@contoso.com",
                                 Trustee="bob@contoso.com", AccessRights=["SendAs"])
        tenant_app.reset_metrics()
        async with tenant_app.tenant() as t:
            assert loaded.desired is not None
            found = await read_person(t, loaded.desired, "Bob")  # an alias, not the address
            with pytest.raises(PersonNotFound):
                await read_person(t, loaded.desired, "nobody-here@contoso.com")
        return found

    found = asyncio.run(run())
    assert found.person.address.casefold() == "bob@contoso.com"
    got = {(a.mailbox.casefold(), a.right, a.status) for a in found.access}
    assert got == {("support@contoso.com", "member", IN_FILE), ("support@contoso.com", "send_as", PENDING),
                   ("info@contoso.com", "member", UNDECLARED), ("marketing@contoso.com", "send_as", UNMANAGED)}
    # Bob is in finance-team (the seed): one membership listing, one memberOf step per group for the chain
    assert not found.groups_unread and [g["mail"] for g in found.groups] == ["finance-team@contoso.com"]
    endpoints = tenant_app.metrics()["endpoints"]
    assert endpoints["GET /v1.0/users/{id}/transitiveMemberOf"] == 1
    assert endpoints["GET /v1.0/groups/{id}/memberOf"] == 1
    # one bulk read: one Full Access read per shared mailbox, no Get-Mailbox per mailbox
    cmdlets = tenant_app.metrics()["cmdlets"]
    assert cmdlets.get("Get-MailboxPermission", 0) == 2 * 3  # two reads above (the second fails after it)
    assert cmdlets.get("Get-RecipientPermission", 0) <= 2

    (tmp_path / "mailboxes.yaml").write_text(FILE)
    r = revoke(found, loaded.desired, read_texts(loaded.desired.files))
    assert [(x.removal.mailbox, x.removal.right, x.line) for x in r.proposal.removed] == [
        ("support@contoso.com", "member", 10), ("support@contoso.com", "send_as", 11)]
    assert r.proposal.changes[0].lines == (10, 11)
    assert {(a.mailbox.casefold(), a.removed_by) for a in r.outside} == {
        ("info@contoso.com", "drift --remediate"), ("marketing@contoso.com", "manual")}
    assert r.owned == ["support@contoso.com"] and r.pending


def test_revoke_removes_every_spelling_the_files_use(tenant_app: TenantApp, tmp_path: Path) -> None:
    """The files name Bob by his address and by a secondary address: revoke of either removes both."""
    text = FILE.replace("    send_as: [bob@contoso.com]", "    send_as: [Robert.B@contoso.com]")
    (tmp_path / "mailboxes.yaml").write_text(text)
    loaded = load_desired(str(tmp_path / "mailboxes.yaml"))
    assert loaded.desired is not None, loaded.findings

    async def run() -> Found:
        await tenant_app.by_hand(ADMIN, "Set-Mailbox", Identity="bob@contoso.com",
                                 EmailAddresses={"@odata.type": "#Exchange.GenericHashTable",
                                                 "Add": ["smtp:robert.b@contoso.com"]})
        async with tenant_app.tenant() as t:
            assert loaded.desired is not None
            return await read_person(t, loaded.desired, "robert.b@contoso.com")

    found = asyncio.run(run())
    assert found.person.address.casefold() == "bob@contoso.com"
    r = revoke(found, loaded.desired, read_texts(loaded.desired.files))
    assert sorted((x.removal.right, x.line) for x in r.proposal.removed) == [("member", 10), ("send_as", 11)]
    after = r.proposal.changes[0].after
    assert "Robert" not in after and after.count("bob@") == 1 and r.owned == ["support@contoso.com"]  # owner stays


def test_who_with_user_read_only_still_follows_the_groups_by_id(tenant_app: TenantApp, tmp_path: Path) -> None:
    """Without GroupMember.Read.All, Graph lists faythe's groups by id only (other properties null) and refuses a
    group's memberOf: the access is still found, named from the directory, one step from her (the seed nests
    payroll-team in finance-team; that step is what could not be read)."""
    (tmp_path / "mailboxes.yaml").write_text(FILE.replace("    send_as: [bob@contoso.com]",
                                                          "    send_as: [finance-team@contoso.com]"))
    loaded = load_desired(str(tmp_path / "mailboxes.yaml"))
    assert loaded.desired is not None, loaded.findings
    with tenant_app.emulator.store.tx() as conn:
        set_roles(conn, "who-limited", {GRAPH_AUD: ["User.Read.All"], EXCHANGE_AUD: ["Exchange.ManageAsApp"]})
    config = TenantConfig.local(BASE_URL, tenant_app.tenant_id, client_id="who-limited")

    async def run() -> Found:
        async with Tenant(config, http_transport=tenant_app.http_transport) as t:
            assert loaded.desired is not None
            return await read_person(t, loaded.desired, "faythe@contoso.com")

    found = asyncio.run(run())
    assert not found.groups_unread
    assert sorted(g["mail"] for g in found.groups) == [
        "finance-team@contoso.com", "hr-team@contoso.com", "payroll-team@contoso.com"]
    assert [(a.mailbox, a.right, a.via) for a in found.access] == [
        ("support@contoso.com", "send_as", ("finance-team@contoso.com",))]


def test_revoke_takes_the_person_off_a_path_folder_by_its_path(tmp_path: Path) -> None:
    """Path folders share their rows (folder_reviewer): the removal goes by each grant's path, so only that
    folder's line changes and nothing is left 'not found'."""
    from mailroom.access.read import offline

    text = FILE + ("    folders:\n      inbox/Reports:\n        reviewer: [bob@contoso.com, carol@contoso.com]\n"
                   "      inbox/Archive:\n        reviewer: [carol@contoso.com]\n")
    (tmp_path / "mailboxes.yaml").write_text(text)
    loaded = load_desired(str(tmp_path / "mailboxes.yaml"))
    assert loaded.desired is not None, loaded.findings
    r = revoke(offline(loaded.desired, "bob@contoso.com"), loaded.desired, read_texts(loaded.desired.files))
    assert sorted((x.removal.right, x.removal.folder, x.line) for x in r.proposal.removed) == [
        ("folder_reviewer", "inbox/Reports", 17), ("member", None, 10), ("send_as", None, 11)]
    assert not r.proposal.missing and "reviewer: [carol@contoso.com]" in r.proposal.changes[0].after
