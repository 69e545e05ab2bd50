"""The review's verdicts as pure functions of what the mailbox records and what was seen (activity/review.py)."""

from __future__ import annotations

import pytest
from mailroom.activity.review import AuditSettings, build, verdict
from mailroom.activity.usage import Seen, Usage
from mailroom.core.model import Desired, FolderAccess, FolderDelegate, Mailbox, Member

DEFAULT = AuditSettings(True, frozenset({"Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "SendAs",
                                         "SendOnBehalf", "Create", "UpdateFolderPermissions", "UpdateInboxRules",
                                         "ApplyRecord", "MailItemsAccessed"}))
WITH_BIND = AuditSettings(True, DEFAULT.delegate | {"FolderBind"})
OFF = AuditSettings(False, DEFAULT.delegate)


def seen(*operations: str) -> Seen:
    return Seen("2026-11-30T10:00:00Z", operations[0], len(operations), set(operations))


@pytest.mark.parametrize(("right", "settings", "seen_", "reads", "expected"), [
    ("send_as", DEFAULT, seen("SendAs"), False, "active"),
    ("send_as", DEFAULT, None, False, "unused"),  # SendAs is recorded by default
    ("send_as", AuditSettings(True, frozenset({"Update"})), None, False, "unknown"),  # SendAs taken off the set
    ("send_as", DEFAULT, seen("Update"), False, "unused"),  # acting otherwise is no use of Send As
    ("send_on_behalf", DEFAULT, None, False, "unused"),
    ("member", DEFAULT, None, False, "unknown"),  # a reader leaves no default record
    ("member", DEFAULT, None, True, "unused"),  # the mailbox has shown MailItemsAccessed records
    ("member", WITH_BIND, None, False, "unused"),
    ("member", DEFAULT, seen("MoveToDeletedItems"), False, "active"),
    ("member", DEFAULT, seen("SendAs"), False, "unknown"),  # sending needs no Full Access
    ("send_as", OFF, None, False, "unknown"),
])
def test_verdict(right: str, settings: AuditSettings, seen_: Seen | None, reads: bool, expected: str) -> None:
    assert verdict(right, settings, seen_, reads)[0] == expected


def test_build_names_the_fix_the_owner_unmanaged_senders_and_quiet_mailboxes() -> None:
    box = Mailbox("shared@contoso.com", "Shared", owner="olga@contoso.com",
                  members=(Member("reader@contoso.com", True), Member("team@contoso.com", True, is_group=True)),
                  send_as=("sender@contoso.com",),
                  folders=(("inbox", FolderAccess(people=(FolderDelegate("clerk@contoso.com", "reviewer"),))),),
                  calendar=FolderAccess(people=(FolderDelegate("planner@contoso.com", "limited_details"),)))
    quiet = Mailbox("quiet@contoso.com", "Quiet", owner="olga@contoso.com")
    off = Mailbox("off@contoso.com", "Off", send_as=("sender@contoso.com",))
    desired = Desired(("contoso.com",), None, None, (box, quiet, off), ())  # type: ignore[arg-type]
    usage = Usage()
    usage.add_page([{"operation": "SendAs", "createdDateTime": "2026-11-30T10:00:00Z", "userPrincipalName":
                     u, "auditData": {"LogonType": 2, "MailboxOwnerUPN": "shared@contoso.com"}}
                    for u in ("sender@contoso.com", "stranger@contoso.com")])
    review = build(desired, {"shared@contoso.com": DEFAULT, "quiet@contoso.com": DEFAULT, "off@contoso.com": OFF},
                   usage, 90, inbound=set())
    rows = {(r.mailbox, r.right, r.person): r for r in review.rows}
    assert rows[("shared@contoso.com", "send_as", "sender@contoso.com")].verdict == "active"
    reader = rows[("shared@contoso.com", "member", "reader@contoso.com")]
    assert (reader.verdict, reader.reviewer) == ("unknown", "olga@contoso.com") and "FolderBind" in (reader.fix or "")
    assert rows[("shared@contoso.com", "member", "team@contoso.com")].verdict == "unknown"  # records name members
    assert rows[("shared@contoso.com", "inbox_reviewer", "clerk@contoso.com")].verdict == "unknown"  # a reader
    free_busy = rows[("shared@contoso.com", "calendar_limited_details", "planner@contoso.com")]
    assert free_busy.verdict == "unknown" and "free/busy" in (free_busy.fix or "")
    again = build(desired, {"shared@contoso.com": WITH_BIND}, usage, 90)  # reads recorded: unused, proposable
    assert {(r.right, r.person) for r in again.unused} >= {("inbox_reviewer", "clerk@contoso.com"),
                                                          ("member", "reader@contoso.com")}
    assert "AuditEnabled $true" in (rows[("off@contoso.com", "send_as", "sender@contoso.com")].fix or "")
    assert [(s.person, s.operations) for s in review.senders] == [("stranger@contoso.com", ["SendAs"])]
    assert [c.mailbox for c in review.candidates] == ["quiet@contoso.com"]  # off records nothing: not judged


def test_a_groups_access_is_its_members_use_with_the_member_named() -> None:
    """team (nested: ann directly, bob through a subgroup) is granted Full Access and Send As on shared;
    crew on quiet. Records name members, never the group."""
    shared = Mailbox("shared@contoso.com", "Shared", owner="olga@contoso.com",
                     members=(Member("team@contoso.com", True, is_group=True),), send_as=("team@contoso.com",))
    quiet = Mailbox("quiet@contoso.com", "Quiet", owner="olga@contoso.com",
                    members=(Member("crew@contoso.com", True, is_group=True),), send_as=("crew@contoso.com",))
    unread = Mailbox("unread@contoso.com", "Unread", members=(Member("other@contoso.com", True, is_group=True),))
    desired = Desired(("contoso.com",), None, None, (shared, quiet, unread), ())  # type: ignore[arg-type]
    usage = Usage()
    usage.add_page([{"operation": op, "createdDateTime": when, "userPrincipalName": who,
                     "auditData": {"LogonType": 2, "MailboxOwnerUPN": "shared@contoso.com"}}
                    for op, when, who in (("MoveToDeletedItems", "2026-11-29T10:00:00Z", "ann@contoso.com"),
                                          ("SendAs", "2026-11-30T09:00:00Z", "bob@contoso.com"),
                                          ("SendAs", "2026-11-30T11:00:00Z", "zed@contoso.com"))])
    groups = {"team@contoso.com": frozenset({"ann@contoso.com", "bob@contoso.com"}),
              "crew@contoso.com": frozenset({"cy@contoso.com"})}
    all_recorded = {b: WITH_BIND for b in ("shared@contoso.com", "quiet@contoso.com", "unread@contoso.com")}
    review = build(desired, all_recorded, usage, 90, group_members=groups)
    rows = {(r.mailbox, r.right, r.person): r for r in review.rows}
    member = rows[("shared@contoso.com", "member", "team@contoso.com")]
    # Full Access used by ann (a delete); bob's SendAs is newer but shows no reading: ann is the evidence
    assert (member.verdict, member.member, member.is_group) == ("active", "ann@contoso.com", True)
    assert member.evidence == "MoveToDeletedItems by ann@contoso.com, a member (1 in the window)"
    send_as = rows[("shared@contoso.com", "send_as", "team@contoso.com")]
    assert (send_as.verdict, send_as.member, send_as.last_activity) == ("active", "bob@contoso.com",
                                                                        "2026-11-30T09:00:00Z")
    # every signal recorded and no member acted: unused (and so proposable), like a person
    assert {(r.mailbox, r.right) for r in review.unused} == {("quiet@contoso.com", "member"),
                                                             ("quiet@contoso.com", "send_as")}
    # members not read: unknown, said why
    other = rows[("unread@contoso.com", "member", "other@contoso.com")]
    assert other.verdict == "unknown" and "GroupMember.Read.All" in (other.fix or "")
    # members acting through the group are no unlisted senders; zed is
    assert [s.person for s in review.senders] == ["zed@contoso.com"]
    # a mailbox that does not record reads: a group nobody read through is unknown, never unused
    default = build(desired, {**all_recorded, "quiet@contoso.com": DEFAULT}, usage, 90, group_members=groups)
    assert {(r.mailbox, r.right, r.verdict) for r in default.rows if r.mailbox == "quiet@contoso.com"} == {
        ("quiet@contoso.com", "member", "unknown"), ("quiet@contoso.com", "send_as", "unused")}


def test_a_path_folders_entry_is_reviewed_by_its_row_and_carries_its_path() -> None:
    box = Mailbox("shared@contoso.com", "Shared", owner="olga@contoso.com",
                  folders=(("inbox/Reports", FolderAccess(people=(FolderDelegate("clerk@contoso.com", "reviewer"),))),))
    desired = Desired(("contoso.com",), None, None, (box,), ())  # type: ignore[arg-type]
    review = build(desired, {"shared@contoso.com": WITH_BIND}, Usage(), 90)
    assert [(r.right, r.person, r.folder, r.verdict) for r in review.rows] == [
        ("folder_reviewer", "clerk@contoso.com", "inbox/Reports", "unused")]
