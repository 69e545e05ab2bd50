"""The one comparison (mailroom.core.compare) that plan, drift, the provider and the guard share."""

from __future__ import annotations

from mailroom.core.compare import changes, removals
from mailroom.core.identity import access_rights, is_managed_permission, managed_addresses, smtp_key
from mailroom.core.spec import Grant, MailboxSpec

BASE = MailboxSpec(address="support@contoso.com", display_name="Support", aliases=("help@contoso.com",),
                   members=(Grant("alice@contoso.com"), Grant("bob@contoso.com", False)),
                   send_as=("alice@contoso.com",), send_on_behalf=("bob@contoso.com",))


def lines(desired: MailboxSpec, live: MailboxSpec | None) -> list[str]:
    return [c.line() for c in changes(desired, live)]


def test_equal_specs_have_no_changes_whatever_the_case_or_order() -> None:
    live = MailboxSpec(address="SUPPORT@contoso.com", display_name="Support", aliases=("Help@Contoso.com",),
                       members=(Grant("BOB@contoso.com", False), Grant("Alice@Contoso.com")),
                       send_as=("ALICE@contoso.com",), send_on_behalf=("bob@CONTOSO.com",))
    assert changes(BASE, live) == []


def test_grant_level_changes() -> None:
    desired = MailboxSpec(**{**BASE.__dict__, "aliases": ("help@contoso.com", "hd@contoso.com"),
                             "members": (Grant("alice@contoso.com", False),),
                             "send_on_behalf": ("bob@contoso.com", "carol@contoso.com"),
                             "display_name": "Customer Support"})
    assert lines(desired, BASE) == [
        '~ display name "Support" → "Customer Support"',
        "+ alias  hd@contoso.com",
        "- member  bob@contoso.com",
        "~ AutoMapping alice@contoso.com on → off",
        "+ Send on Behalf  carol@contoso.com",
    ]
    assert [c.subject for c in removals(changes(desired, BASE))] == ["bob@contoso.com"]


def test_create_and_delete() -> None:
    created = changes(BASE, None)
    assert created[0].op == "create" and not created[0].is_removal
    assert "+ member  alice@contoso.com (AutoMapping on)" in [c.line() for c in created]
    absent = MailboxSpec(address=BASE.address, state="absent")
    assert [(c.op, c.is_removal) for c in changes(absent, BASE)] == [("delete", True)]
    assert changes(absent, None) == []


def test_primary_address_is_never_an_alias_change() -> None:
    live = MailboxSpec(**{**BASE.__dict__, "aliases": ("help@contoso.com", "support@contoso.com")})
    assert changes(BASE, live) == []


def test_system_entries_and_managed_addresses() -> None:
    assert not is_managed_permission({"User": "NT AUTHORITY\\SELF", "AccessRights": ["FullAccess, ReadPermission"]})
    assert not is_managed_permission({"User": "a@contoso.com", "IsInherited": True})
    assert not is_managed_permission({"User": "a@contoso.com", "Deny": True})
    assert is_managed_permission({"User": "a@contoso.com", "IsInherited": False, "Deny": False})
    assert access_rights({"AccessRights": ["FullAccess, ReadPermission"]}) == {"fullaccess", "readpermission"}
    proxies = ["SMTP:Support@contoso.com", "smtp:help@contoso.com", "smtp:support@contoso.onmicrosoft.com",
               "SIP:support@contoso.com", "X500:/o=x"]
    assert managed_addresses(proxies, ["contoso.com"]) == {
        "support@contoso.com": "Support@contoso.com", "help@contoso.com": "help@contoso.com"}
    assert smtp_key("smtp:Help@Contoso.COM ") == "help@contoso.com"
