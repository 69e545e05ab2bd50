"""Take a leaver out of every mailbox in the files as one reviewable change, and say what else remains.

Pure: from one person's access (``access.read``) and the files' texts. The files' grants of the person (every
GRANT row and folder role of the rights table, so a right added there is revoked with no change here) become one
``file.edit.Proposal``. What the files cannot remove is listed with what removes it:

- a grant held in the tenant on a managed mailbox the files do not declare: ``drift --remediate``;
- a grant on a mailbox the files do not manage: a manual step (or ``import``, then revoke again);
- access through a group: taking the person out of the group (Entra), or the group's grant through revoke
  of the group itself; the group's other members keep theirs;
- a mailbox the person owns (``owner``): a new owner is for a person to choose, so it is listed, not edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom.access.index import UNDECLARED, UNMANAGED, Access
from mailroom.access.read import Found
from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.file.edit import Proposal, Removal, propose_removals


@dataclass
class Revocation:
    found: Found
    proposal: Proposal
    outside: list[Access] = field(default_factory=list)  # held in the tenant, not in the files
    through_groups: list[Access] = field(default_factory=list)
    owned: list[str] = field(default_factory=list)  # mailboxes whose owner is the person

    @property
    def pending(self) -> bool:
        """Something is left to do: a change to review, or access the change cannot remove."""
        return bool(not self.proposal.empty or self.outside or self.through_groups or self.owned
                    or self.proposal.manual)

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.found.person.to_dict(),
                "removed": [r.to_dict() for r in self.proposal.removed],
                "files": [{"path": c.path, "lines": list(c.lines)} for c in self.proposal.changes],
                "manual_edits": [m.to_dict() for m in self.proposal.manual],
                "outside_files": [a.to_dict() for a in self.outside],
                "through_groups": [a.to_dict() for a in self.through_groups],
                "owner_of": self.owned, "groups_unread": self.found.groups_unread or None,
                "scan": self.found.stats}


def revoke(found: Found, desired: Desired, texts: Mapping[str, str]) -> Revocation:
    """The change that removes ``found.person``'s own grants from the files, and what it leaves."""
    direct = [a for a in found.access if not a.via]
    keys = found.person.keys | {smtp_key(found.person.address)}
    # A path folder's rows are shared by every path folder: its grants are removed by path, from the files below.
    removals = [Removal(a.mailbox, a.right, a.holder) for a in direct if a.declared and not _path_row(a.right)]
    # Every spelling of the person the files use (a list may name them twice, by UPN and by an alias).
    for mb in desired.mailboxes:
        spec = MailboxSpec.from_model(mb, desired.domains)
        removals += [Removal(mb.address, r, p) for r, p in spec.grants() if smtp_key(p) in keys and not _path_row(r)]
        removals += [Removal(mb.address, g.right, g.person, g.folder) for g in spec.folder_grants
                     if not g.special and rights.is_path(g.folder) and smtp_key(g.person) in keys]
    proposal = propose_removals(texts, removals)
    outside = [a for a in direct if a.status in (UNDECLARED, UNMANAGED)]
    owned = sorted(mb.address for mb in desired.mailboxes if mb.owner and smtp_key(mb.owner) in keys)
    return Revocation(found, proposal, outside, [a for a in found.access if a.via], owned)


def _path_row(right: str) -> bool:
    row = rights.BY_KEY.get(right)
    return row is not None and isinstance(row.write, rights.FolderPermission) and row.write.folder == rights.PATH_FOLDER
