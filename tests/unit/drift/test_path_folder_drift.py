"""Drift of a path folder's entries (``folders: inbox/Reports``): the finding names its folder, and two folders'
findings for one person are two findings (their rights-table row is every path folder's). Pure."""

from __future__ import annotations

from mailroom.core.compare import changes
from mailroom.core.spec import FolderGrant, MailboxSpec
from mailroom.drift.scan import _from_change


def test_a_path_folders_findings_name_the_folder_and_differ_by_it() -> None:
    def spec(*grants: FolderGrant) -> MailboxSpec:
        base = (FolderGrant(f, who, "none") for f in ("inbox/Reports", "inbox/Archive")
                for who in ("Default", "Anonymous"))
        return MailboxSpec(address="v@contoso.com", folder_grants=(*base, *grants))

    live = spec(FolderGrant("inbox/Reports", "dave@contoso.com", "author"),
                FolderGrant("inbox/Archive", "dave@contoso.com", "author"),
                FolderGrant("inbox/Archive", "bob@contoso.com", "editor"))
    wanted = spec(FolderGrant("inbox/Archive", "bob@contoso.com", "reviewer"))
    found = [_from_change(c, None, ("contoso.com",)) for c in changes(wanted, live)]
    assert sorted((f.kind, f.right, f.subject, f.detail) for f in found) == [
        ("changed_setting", "folder_reviewer", "bob@contoso.com", "inbox/Archive"),
        ("extra_grant", "folder_author", "dave@contoso.com", "inbox/Archive"),
        ("extra_grant", "folder_author", "dave@contoso.com", "inbox/Reports")]
    assert len({f.key for f in found}) == 3
    changed = next(f for f in found if f.kind == "changed_setting")
    assert changed.describe() == "inbox/Archive reviewer: file reviewer, tenant editor"
