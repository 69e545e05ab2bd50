"""The rights table (mailroom.core.rights) and what derives from it: labels, comparison, the read, attribution,
the access matrix, the defaults and the alias rule. Pure: no tenant, no processes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from mailroom.core import rights
from mailroom.core.compare import RIGHTS, SETTINGS, Change, changes, show
from mailroom.core.identity import exchange_alias, local_part
from mailroom.core.model import DEFAULTS, POLICY, Mailbox, Policy
from mailroom.core.rights import (
    FolderPermission,
    Lifecycle,
    MailboxList,
    MailboxSetting,
    PermissionPair,
    RuleSwitch,
    Shape,
    UserProperty,
)
from mailroom.core.spec import FolderGrant, Grant, MailboxSpec
from mailroom.drift.history import CAUSES
from mailroom.drift.scan import DriftFinding
from mailroom.reconcile.live import live_spec
from mailroom.views.report import RIGHT_MARK

SPEC_FIELDS = {f.name for f in fields(MailboxSpec)}

FOLDER_ROLES = tuple(r for r in rights.ROLE_NAMES if r != "none")
# A folder's roles (the calendar's free/busy ones on the calendar only), then its Default and Anonymous entries.
ROLES_OF = {f: tuple(r for r in FOLDER_ROLES if f == "calendar" or r not in rights.CALENDAR_ONLY)
            for f in ("calendar", "inbox", "contacts", "folder")}
# The ``folder`` rows are every path folder's (a folder a user made): a grant names its folder by path.
FOLDER_OF = {"calendar": "calendar", "inbox": "inbox", "contacts": "contacts", "folder": "inbox/Reports"}
FOLDER_PEOPLE = tuple(f"{f}_{r}" for f, roles in ROLES_OF.items() for r in roles)
FOLDER_KEYS = (*FOLDER_PEOPLE, *(f"{f}_{e}" for f in ROLES_OF for e in ("default", "anonymous")))
BEFORE = MailboxSpec(address="support@contoso.com", display_name="Support", aliases=("help@contoso.com",),
                     members=(Grant("alice@contoso.com"), Grant("bob@contoso.com", False)),
                     send_as=("alice@contoso.com",), send_on_behalf=("bob@contoso.com",),
                     forward_rules=('1: "out" redirects to x@evil.example (external)',),
                     folder_grants=(FolderGrant("calendar", "Default", "availability_only"),
                                    FolderGrant("calendar", "Anonymous", "none")))
# Differs from BEFORE in every right and setting, so that every key shows up in one diff.
AFTER = MailboxSpec(address="support@contoso.com", display_name="Customer Support", aliases=("hd@contoso.com",),
                    members=(Grant("alice@contoso.com", False), Grant("carol@contoso.com")),
                    send_as=("carol@contoso.com",), send_on_behalf=("alice@contoso.com",), hidden_from_gal=True,
                    copy_send_as=False, copy_send_on_behalf=False, audit_enabled=False, sign_in_blocked=False,
                    pop=True, imap=True, activesync=True, ews=True, smtp_auth=None, owa=False, mapi=False,
                    forwarding_address="dave@contoso.com", forwarding_smtp="x@partner.example",
                    forward_keep_copy=True,
                    folder_grants=tuple(g for f, roles in ROLES_OF.items() for g in (
                        FolderGrant(FOLDER_OF[f], "Default", "none" if f == "calendar" else "reviewer"),
                        FolderGrant(FOLDER_OF[f], "Anonymous", "reviewer"),
                        *(FolderGrant(FOLDER_OF[f], f"{r}@contoso.com", r) for r in roles))))
PROTOCOLS = ("pop", "imap", "activesync", "ews", "smtp_auth", "owa", "mapi")
FORWARDING = ("forwarding_address", "forwarding_smtp", "forward_keep_copy")


def test_every_right_has_one_row_and_compare_derives_from_it() -> None:
    keys = [r.key for r in rights.TABLE]
    assert len(keys) == len(set(keys))
    assert set(keys) == {"mailbox", "member", "automap", "send_as", "send_on_behalf", "alias", "display_name",
                         "hidden_from_gal", "copy_send_as", "copy_send_on_behalf", "audit_enabled",
                         "sign_in_blocked", *FORWARDING, "forward_rule", *PROTOCOLS, *FOLDER_KEYS}
    assert RIGHTS == {r.key: (r.label, r.takes_access) for r in rights.TABLE}
    assert SETTINGS == ("display_name", "hidden_from_gal", "copy_send_as", "copy_send_on_behalf", "audit_enabled",
                        "sign_in_blocked", *FORWARDING, *PROTOCOLS)
    # Forwarding is how mail leaves: its rows say so (drift's high severity) and name the baselines.
    assert {r.key for r in rights.TABLE if r.exfiltration} == {"forwarding_address", "forwarding_smtp",
                                                               "forward_rule"}
    assert {r.control for r in rights.TABLE if r.exfiltration} == {"CIS 6.2.1, SCuBA MS.EXO.1.1v2"}
    assert tuple(r.key for r in rights.PROTOCOLS) == PROTOCOLS
    assert {k for k, (_, takes) in RIGHTS.items() if takes} == {"mailbox", "member", "send_as", "send_on_behalf",
                                                                *FOLDER_PEOPLE}
    for r in rights.TABLE:
        assert r.attr in SPEC_FIELDS, r.key


def test_every_change_a_diff_makes_has_a_row_and_its_line_the_rows_label() -> None:
    diff = changes(AFTER, BEFORE)
    assert {c.right for c in diff} == {r.key for r in rights.TABLE} - {"mailbox"}
    for c in diff:  # a path folder's line names it by its path (inbox/Reports reviewer)
        assert rights.folder_label(rights.right(c.right), c.folder) in c.line(), c
        assert (c.folder == "inbox/Reports") == c.right.startswith("folder_"), c
    created = changes(AFTER, None)
    assert created[0].line() == '+ create shared mailbox "Customer Support"'
    assert "+ member  carol@contoso.com (AutoMapping on)" in [c.line() for c in created]


def test_a_new_mailbox_is_compared_with_what_new_mailbox_leaves() -> None:
    # The table's initial values: no sent-items copies, visible, audited, sign-in allowed, every protocol on
    # and SMTP AUTH the organisation's (None, a value: not "no fixed value").
    assert {r.key: r.fresh for r in rights.SETTINGS} == {
        "display_name": rights.NOT_FIXED, "hidden_from_gal": False, "copy_send_as": False, "copy_send_on_behalf": False,
        "audit_enabled": True, "sign_in_blocked": False, "pop": True, "imap": True, "activesync": True, "ews": True,
        "smtp_auth": None, "owa": True, "mapi": True, "forwarding_address": "", "forwarding_smtp": "",
        "forward_keep_copy": False}
    sets = {c.right: (c.before, c.after) for c in changes(MailboxSpec(address="a@contoso.com", display_name="A"),
                                                           None) if c.op == "set"}
    assert sets == {"copy_send_as": (False, True), "copy_send_on_behalf": (False, True),
                    "sign_in_blocked": (False, True), "pop": (True, False), "imap": (True, False),
                    "activesync": (True, False), "ews": (True, False), "smtp_auth": (None, False)}


def test_write_kinds_are_as_exchange_and_graph_take_them() -> None:
    kinds = {r.key: type(r.write) for r in rights.TABLE}
    assert kinds == {"mailbox": Lifecycle, "member": PermissionPair, "automap": PermissionPair,
                     "send_as": PermissionPair, "send_on_behalf": MailboxList, "alias": MailboxList,
                     "display_name": MailboxSetting, "hidden_from_gal": MailboxSetting,
                     "copy_send_as": MailboxSetting, "copy_send_on_behalf": MailboxSetting,
                     "audit_enabled": MailboxSetting, "sign_in_blocked": UserProperty,
                     **{k: MailboxSetting for k in PROTOCOLS + FORWARDING}, "forward_rule": RuleSwitch,
                     **{k: FolderPermission for k in FOLDER_KEYS}}
    for r in rights.TABLE:
        on_mailbox = isinstance(r.write, MailboxSetting) and r.write.cmdlet == "Set-Mailbox"
        if isinstance(r.write, MailboxList) or on_mailbox:
            # Exchange reads and writes a mailbox property under one name.
            assert (r.read.source, r.read.field) == ("Get-Mailbox", r.write.param), r.key
        elif isinstance(r.write, MailboxSetting):  # a protocol: Get-/Set-CASMailbox, one name too
            assert (r.read.source, r.write.cmdlet, r.read.field) == ("Get-CASMailbox", "Set-CASMailbox",
                                                                     r.write.param), r.key
    smtp = rights.right("smtp_auth").write
    assert isinstance(smtp, MailboxSetting)  # on = SmtpClientAuthenticationDisabled false; None both ways
    assert (smtp.wire(True), smtp.wire(False), smtp.wire(None)) == (False, True, None)
    assert (smtp.value(False), smtp.value(True), smtp.value(None)) == (True, False, None)
    send_as = rights.right("send_as").write
    assert isinstance(send_as, PermissionPair)
    assert send_as.call(True, "guid", "x@contoso.com") == (
        "Add-RecipientPermission", {"Identity": "guid", "Trustee": "x@contoso.com", "AccessRights": ["SendAs"],
                                    "Confirm": False})
    blocked = rights.right("sign_in_blocked").write
    assert isinstance(blocked, UserProperty) and blocked.value(True) is False and blocked.value(False) is True


def test_attribution_causes_are_the_audited_cmdlets_of_each_write() -> None:
    assert CAUSES == {
        "member": (("Add-MailboxPermission", "Remove-MailboxPermission"), "User"),
        "automap": (("Add-MailboxPermission", "Remove-MailboxPermission"), "User"),
        "send_as": (("Add-RecipientPermission", "Remove-RecipientPermission"), "Trustee"),
        "send_on_behalf": (("Set-Mailbox",), "GrantSendOnBehalfTo"),
        "alias": (("Set-Mailbox",), "EmailAddresses"),
        "display_name": (("Set-Mailbox",), "DisplayName"),
        "hidden_from_gal": (("Set-Mailbox",), "HiddenFromAddressListsEnabled"),
        "copy_send_as": (("Set-Mailbox",), "MessageCopyForSentAsEnabled"),
        "copy_send_on_behalf": (("Set-Mailbox",), "MessageCopyForSendOnBehalfEnabled"),
        "audit_enabled": (("Set-Mailbox",), "AuditEnabled"),
        "mailbox": (("New-Mailbox", "Remove-Mailbox"), None),
        "pop": (("Set-CASMailbox",), "PopEnabled"), "imap": (("Set-CASMailbox",), "ImapEnabled"),
        "activesync": (("Set-CASMailbox",), "ActiveSyncEnabled"), "ews": (("Set-CASMailbox",), "EwsEnabled"),
        "smtp_auth": (("Set-CASMailbox",), "SmtpClientAuthenticationDisabled"),
        "owa": (("Set-CASMailbox",), "OWAEnabled"), "mapi": (("Set-CASMailbox",), "MAPIEnabled"),
        "forwarding_address": (("Set-Mailbox",), "ForwardingAddress"),
        "forwarding_smtp": (("Set-Mailbox",), "ForwardingSmtpAddress"),
        "forward_keep_copy": (("Set-Mailbox",), "DeliverToMailboxAndForward"),
        "forward_rule": (("New-InboxRule", "Set-InboxRule", "Enable-InboxRule"), None),
        **{k: (("Add-MailboxFolderPermission", "Set-MailboxFolderPermission", "Remove-MailboxFolderPermission"),
               "User") for k in FOLDER_KEYS},
    }
    assert "sign_in_blocked" not in CAUSES  # Graph directory audits, not Exchange's


def test_matrix_marks_and_grants_follow_the_grant_rows() -> None:
    assert RIGHT_MARK == {"member": "FA", "send_as": "SA", "send_on_behalf": "SoB", "calendar_availability_only":
                          "Cal:AO", "calendar_limited_details": "Cal:LD", "calendar_reviewer": "Cal:R",
                          "calendar_contributor": "Cal:C", "calendar_non_editing_author": "Cal:NEA",
                          "calendar_author": "Cal:A", "calendar_publishing_author": "Cal:PA",
                          "calendar_editor": "Cal:E", "calendar_publishing_editor": "Cal:PE", "calendar_owner": "Cal:O",
                          **{f"{f}_{r}": f"{m}:{a}"
                             for f, m in (("inbox", "Inb"), ("contacts", "Con"), ("folder", "Fld"))
                             for r, _, a in rights.FOLDER_ROLES if r in ROLES_OF[f]}}
    assert [r.key for r in rights.GRANTS] == ["member", "send_as", "send_on_behalf"]
    assert BEFORE.grants() == [("member", "alice@contoso.com"), ("member", "bob@contoso.com"),
                               ("send_as", "alice@contoso.com"), ("send_on_behalf", "bob@contoso.com")]
    assert rights.OPTION_OF == {"member": rights.right("automap")}
    assert all(r.shape in (Shape.GRANT, Shape.FOLDER) for r in rights.TABLE if r.mark)
    # A person's role on a folder is a grant of its own row in the matrix; Default and Anonymous name nobody.
    assert AFTER.grants()[-2:] == [("folder_publishing_editor", "publishing_editor@contoso.com"),
                                   ("folder_owner", "owner@contoso.com")]


def test_one_way_to_show_a_value_in_plans_and_drift() -> None:
    assert [show(v) for v in (True, False, "Help", 3, None)] == ["on", "off", '"Help"', "3", "organisation default"]
    setting = DriftFinding("changed_setting", "a@contoso.com", "hidden_from_gal", expected=True, actual=False)
    assert setting.describe() == "hidden from GAL: file on, tenant off"
    automap = DriftFinding("changed_setting", "a@contoso.com", "automap", "x@contoso.com", True, False)
    assert automap.describe() == "file: on, tenant: off"
    assert DriftFinding("changed_setting", "a@contoso.com", "unknown", expected=1, actual=2).describe() == \
        "unknown: file 1, tenant 2"
    smtp = DriftFinding("changed_setting", "a@contoso.com", "smtp_auth", expected=False, actual=True,
                        control="SCuBA MS.EXO.5.1v1")
    assert smtp.describe() == "SMTP AUTH: file off, tenant on [SCuBA MS.EXO.5.1v1]"
    assert rights.label(None) == ""


class _Directory:
    """Every identity resolves to itself: the field mapping is under test, not name resolution."""

    def canonical(self, identity: str, written: dict[str, str]) -> str:
        return identity

    def lookup(self, identity: str) -> Any:
        return object()


def test_live_spec_reads_each_right_from_the_field_the_table_names() -> None:
    row = {"PrimarySmtpAddress": "support@contoso.com", "DisplayName": "Support", "Guid": "g-1",
           "ExternalDirectoryObjectId": "u-1", "RecipientTypeDetails": "SharedMailbox",
           "EmailAddresses": ["SMTP:support@contoso.com", "smtp:help@contoso.com", "smtp:s@contoso.onmicrosoft.com"],
           "GrantSendOnBehalfTo": ["bob@contoso.com"], "HiddenFromAddressListsEnabled": True,
           "MessageCopyForSentAsEnabled": True, "MessageCopyForSendOnBehalfEnabled": False, "AuditEnabled": False}
    full_access = [{"User": "alice@contoso.com", "AccessRights": ["FullAccess"]},
                   {"User": "bob@contoso.com", "AccessRights": ["FullAccess"], "AutoMapping": False},
                   {"User": "NT AUTHORITY\\SELF", "AccessRights": ["FullAccess"]},
                   {"User": "eve@contoso.com", "AccessRights": ["ReadPermission"]}]
    send_as = [{"Trustee": "alice@contoso.com", "AccessRights": ["SendAs"]}]
    cas = {"PopEnabled": False, "ImapEnabled": True, "ActiveSyncEnabled": False, "EwsEnabled": False,
           "SmtpClientAuthenticationDisabled": False, "OWAEnabled": True, "MAPIEnabled": False}
    live = live_spec(row, full_access, send_as, False, _Directory(), {}, ["contoso.com"], cas=cas)
    assert live.spec == MailboxSpec(
        address="support@contoso.com", display_name="Support", aliases=("help@contoso.com",),
        members=(Grant("alice@contoso.com", True), Grant("bob@contoso.com", False)), send_as=("alice@contoso.com",),
        send_on_behalf=("bob@contoso.com",), hidden_from_gal=True, copy_send_as=True, copy_send_on_behalf=False,
        audit_enabled=False, sign_in_blocked=True, pop=False, imap=True, activesync=False, ews=False, smtp_auth=True,
        owa=True, mapi=False, domains=("contoso.com",))
    # A row without the settings: what the table says a missing field means; no user: sign-in not blocked; no
    # protocols read: as Exchange leaves a new mailbox.
    bare = live_spec({"PrimarySmtpAddress": "x@contoso.com"}, [], [], None, _Directory(), {}, ["contoso.com"])
    assert (bare.spec.display_name, bare.spec.hidden_from_gal, bare.spec.copy_send_as, bare.spec.copy_send_on_behalf,
            bare.spec.audit_enabled, bare.spec.sign_in_blocked) == ("", False, False, False, True, False)
    assert {r.attr: getattr(bare.spec, r.attr) for r in rights.PROTOCOLS} == {
        "pop": True, "imap": True, "activesync": True, "ews": True, "smtp_auth": None, "owa": True, "mapi": True}
    assert live_spec(row, [], [], True, _Directory(), {}, []).spec.sign_in_blocked is False


def test_defaults_are_declared_once_in_the_model() -> None:
    spec = MailboxSpec(address="a@contoso.com")
    assert (spec.hidden_from_gal, spec.copy_send_as, spec.copy_send_on_behalf, spec.audit_enabled,
            spec.sign_in_blocked) == (DEFAULTS.hidden_from_gal, DEFAULTS.sent_items.copy_send_as,
                                      DEFAULTS.sent_items.copy_send_on_behalf, DEFAULTS.audit_enabled,
                                      DEFAULTS.sign_in_blocked)
    assert Grant("x@contoso.com").automap is DEFAULTS.automap
    mailbox = Mailbox(address="a@contoso.com", display_name="A")
    assert (mailbox.hidden_from_gal, mailbox.sent_items, mailbox.audit_enabled, mailbox.sign_in_blocked) == (
        DEFAULTS.hidden_from_gal, DEFAULTS.sent_items, DEFAULTS.audit_enabled, DEFAULTS.sign_in_blocked)
    # A state without the values (an older mailroom wrote it) means the defaults; but protocols, which an older
    # mailroom never set, are as Exchange leaves a mailbox (every one on), so the profile is still to be applied.
    fresh = {r.attr: r.fresh for r in rights.PROTOCOLS}
    assert MailboxSpec.from_props({"address": "a@contoso.com", "members": [{"address": "x@contoso.com"}]}) == \
        MailboxSpec(address="a@contoso.com", members=(Grant("x@contoso.com"),), **fresh)
    assert MailboxSpec.from_props(AFTER.to_props()) == AFTER
    # None (smtp_auth left to the organisation) survives the engine, which drops null properties.
    assert AFTER.to_props()["smtp_auth"] == "organisation"
    assert (spec.pop, spec.imap, spec.activesync, spec.ews, spec.smtp_auth, spec.owa, spec.mapi) == (
        False, False, False, False, False, True, True) == tuple(vars(DEFAULTS.protocols).values())
    assert POLICY == Policy() and POLICY.max_removals_per_apply == 10


@pytest.mark.parametrize("address, alias", [("Support@contoso.com", "Support"), (" help@contoso.com ", "help"),
                                             ("smtp:Desk@contoso.com", "Desk")])
def test_the_alias_rule_once(address: str, alias: str) -> None:
    assert exchange_alias(address) == alias
    assert local_part(address) == alias.casefold()
    assert Mailbox(address=address.strip(), display_name="").alias == exchange_alias(address.strip())


def test_is_removal_comes_from_the_table() -> None:
    assert Change("m", "remove", "send_on_behalf", "x").is_removal
    assert not Change("m", "remove", "alias", "x").is_removal
    assert Change("m", "delete", "mailbox").is_removal


def test_what_counts_as_forwarding_inside_the_organisation() -> None:
    from mailroom.core.identity import is_internal

    domains = ["contoso.com"]
    assert is_internal("Bob@Contoso.com", "UserMailbox", domains)
    assert is_internal("t@contoso.com", "SharedMailbox", domains)
    assert is_internal("team@contoso.com", "MailUniversalSecurityGroup", domains)
    # A contact, mail user or guest delivers outside whatever its address; an unknown address is no recipient.
    assert not any(is_internal("x@contoso.com", kind, domains) for kind in ("MailContact", "MailUser", "GuestMailUser",
                                                                             None))
    assert not is_internal("x@gmail.com", "UserMailbox", domains)


def test_a_forwarding_rule_is_disabled_by_its_rule_identity_never_deleted() -> None:
    from mailroom.reconcile.converge import plan_calls
    from mailroom.reconcile.live import LiveMailbox

    live = LiveMailbox(BEFORE, "guid-1", "user-1")
    calls = plan_calls(live, changes(MailboxSpec(address=BEFORE.address), BEFORE))
    disable = [call for c, call in calls.removes if c.right == "forward_rule"]
    assert disable == [("Disable-InboxRule", {"Identity": "1", "Mailbox": "guid-1", "Confirm": False})]
    [line] = [c.line() for c in changes(MailboxSpec(address=BEFORE.address), BEFORE) if c.right == "forward_rule"]
    assert line == '- disable forwarding inbox rule  1: "out" redirects to x@evil.example (external)'


def test_a_folder_entry_is_changed_in_place_and_default_and_anonymous_are_only_ever_set() -> None:
    """One Set per changed entry (role or flags), never a remove and add; Default/Anonymous reset, not removed."""
    def spec(*entries: tuple[str, str]) -> MailboxSpec:
        return MailboxSpec(address="v@contoso.com", folder_grants=tuple(FolderGrant("calendar", p, a)
                                                                        for p, a in entries))
    live = spec(("Default", "reviewer"), ("Anonymous", "none"), ("bob@contoso.com", "reviewer"),
                ("alice@contoso.com", "editor+delegate+private_items"))
    want = spec(("Default", "availability_only"), ("Anonymous", "none"), ("Bob@contoso.com", "editor"),
                ("alice@contoso.com", "editor+delegate"))
    diff = changes(want, live)
    assert [(c.op, c.right, c.subject, c.before, c.after) for c in diff] == [
        ("set", "calendar_default", None, "reviewer", "availability_only"),
        ("set", "calendar_editor", "Bob@contoso.com", "reviewer", "editor"),
        ("set", "calendar_editor", "alice@contoso.com", "editor+delegate+private_items", "editor+delegate")]
    assert [c.line() for c in diff] == [
        "~ calendar Default (everyone in the organisation) reviewer → availability_only",
        "~ calendar Bob@contoso.com reviewer → editor",
        "~ calendar alice@contoso.com editor (delegate, private items) → editor (delegate)"]
    # A file that no longer lists someone removes their entry; it never removes Default or Anonymous.
    gone = changes(spec(("Default", "availability_only"), ("Anonymous", "none")), live)
    assert {(c.op, c.right) for c in gone} == {("set", "calendar_default"), ("remove", "calendar_reviewer"),
                                               ("remove", "calendar_editor")}
    assert all(c.is_removal for c in gone if c.op == "remove")
    # A folder the file does not name is not compared; a live mailbox without a read of it has Exchange's values.
    assert changes(MailboxSpec(address="v@contoso.com"), live) == []
    assert changes(spec(("Default", "availability_only"), ("Anonymous", "none")), MailboxSpec("v@contoso.com")) == []


def test_folder_writes_name_the_folder_by_id_set_the_flags_and_never_send_an_invitation() -> None:
    editor = rights.right("calendar_editor").write
    default = rights.right("calendar_default").write
    assert isinstance(editor, FolderPermission) and isinstance(default, FolderPermission)
    folder = "v@contoso.com:LgAAAA=="
    assert editor.call("set", folder, "bob@contoso.com", "editor") == (
        "Set-MailboxFolderPermission", {"Identity": folder, "User": "bob@contoso.com", "AccessRights": ["Editor"],
                                        "SharingPermissionFlags": "None", "Confirm": False})
    assert editor.call("add", folder, "a@contoso.com", "editor+delegate+private_items")[1][
        "SharingPermissionFlags"] == "Delegate,CanViewPrivateItems"
    assert rights.right("calendar_reviewer").write.call("add", folder, "a@contoso.com", "reviewer") == (  # type: ignore[union-attr]
        "Add-MailboxFolderPermission", {"Identity": folder, "User": "a@contoso.com", "AccessRights": ["Reviewer"],
                                        "Confirm": False})
    assert default.call("set", folder, "Default", "none")[1]["AccessRights"] == ["None"]
    assert editor.call("remove", folder, "a@contoso.com") == (
        "Remove-MailboxFolderPermission", {"Identity": folder, "User": "a@contoso.com", "Confirm": False})
    every = [p for r in rights.FOLDER_RIGHTS for op in ("add", "set", "remove")
             for p in [r.write.call(op, folder, "x@contoso.com", "editor")[1]]]  # type: ignore[union-attr]
    assert not any("SendNotificationToUser" in p for p in every)
    # The policy order: free/busy below details below reading below anything that writes.
    ranks = [rights.role_rank(r) for r in ("none", "availability_only", "limited_details", "reviewer", "author",
                                            "editor", "owner")]
    assert ranks == sorted(ranks) and rights.role_rank("custom:ReadItems") > rights.role_rank("owner")
