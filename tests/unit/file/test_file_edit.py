"""file/edit.py: grants removed from the files touch exactly their lines, and the patch applies with git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mailroom.file.edit import Removal, propose_removals, read_texts
from mailroom.file.load import load_desired

MAIN = """\
version: 1
tenant:
  domains: [contoso.com]
include:
  - mailboxes.d/*.yaml
mailboxes:
  - address: support@contoso.com
    display_name: Support
    owner: alice@contoso.com
    members:
      - alice@contoso.com
      # Bob covers the night shift
      - Bob@Contoso.com
      - user: carol@contoso.com
        automap: false         # opens it by hand

      - group: support-team@contoso.com
    send_as: [alice@contoso.com, bob@contoso.com]   # both answer as support
    send_on_behalf: [bob@contoso.com]
  - address: solo@contoso.com
    display_name: Solo
    owner: alice@contoso.com
    members:   # only Bob
      - bob@contoso.com
    send_as:
      - bob@contoso.com"""  # no newline at the end: the patch must say so

SALES = """\
mailboxes:
  - address: sales@contoso.com
    display_name: Sales
    owner: alice@contoso.com
    members:
      - user: bob@contoso.com
      - alice@contoso.com
"""


def tree(tmp_path: Path, git: bool = False) -> Path:
    (tmp_path / "mailboxes.d").mkdir()
    (tmp_path / "mailboxes.yaml").write_text(MAIN)
    (tmp_path / "mailboxes.d" / "sales.yaml").write_text(SALES)
    if not git:
        return tmp_path
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"],
                   check=True)
    return tmp_path


def bob_everywhere() -> list[Removal]:
    return [Removal(mb, right, "bob@contoso.com") for mb in ("support@contoso.com", "solo@contoso.com",
                                                             "sales@contoso.com")
            for right in ("member", "send_as", "send_on_behalf")]


@pytest.mark.e2e  # runs git
def test_removals_touch_exactly_the_grant_lines_and_apply_with_git(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path, git=True)
    monkeypatch.chdir(root)
    loaded = load_desired("mailboxes.yaml")
    assert loaded.ok(), loaded.findings
    proposal = propose_removals(read_texts(loaded.documents), bob_everywhere())
    by_path = {c.path: c for c in proposal.changes}
    assert set(by_path) == {"mailboxes.yaml", "mailboxes.d/sales.yaml"}
    main = by_path["mailboxes.yaml"]
    # member Bob (line 13, his comment on line 12 stays), Send As and Send on Behalf (18, 19), and solo's two
    # lists, which become `[]` on their key lines (23-26, the last without a newline).
    assert main.lines == (13, 18, 19, 23, 24, 25, 26)
    after = main.after.split("\n")
    assert "      # Bob covers the night shift" in after
    assert "    send_as: [alice@contoso.com]   # both answer as support" in after
    assert "    send_on_behalf: []" in after
    assert after[-3:] == ["    owner: alice@contoso.com", "    members: []  # only Bob", "    send_as: []"]
    assert by_path["mailboxes.d/sales.yaml"].lines == (6,)
    assert proposal.missing == [Removal("solo@contoso.com", "send_on_behalf", "bob@contoso.com"),
                                Removal("sales@contoso.com", "send_as", "bob@contoso.com"),
                                Removal("sales@contoso.com", "send_on_behalf", "bob@contoso.com")]
    # every other line is byte for byte what it was
    before = main.before.split("\n")
    kept = [line for i, line in enumerate(before, 1) if i not in main.lines]
    assert [line for line in after if line not in ("    send_as: [alice@contoso.com]   # both answer as support",
                                                   "    send_on_behalf: []", "    members: []  # only Bob",
                                                   "    send_as: []")] == kept

    patch = tmp_path / "revoke.patch"
    proposal.write(patch, root)
    assert subprocess.run(["git", "-C", str(root), "apply", "--check", str(patch)]).returncode == 0
    subprocess.run(["git", "-C", str(root), "apply", str(patch)], check=True)
    assert (root / "mailboxes.yaml").read_text() == main.after
    reloaded = load_desired("mailboxes.yaml")
    assert reloaded.ok(), reloaded.findings
    assert reloaded.desired is not None
    people = {(mb.address, p) for mb in reloaded.desired.mailboxes
              for p in [m.key for m in mb.members] + list(mb.send_as) + list(mb.send_on_behalf)}
    assert not any("bob" in p for _, p in people)
    assert ("support@contoso.com", "carol@contoso.com") in people


def test_in_place_write_and_nothing_to_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path)
    monkeypatch.chdir(root)
    loaded = load_desired("mailboxes.yaml")
    none = propose_removals(read_texts(loaded.documents), [Removal("support@contoso.com", "member", "zed@x.com")])
    assert none.empty and none.diff() == "" and len(none.missing) == 1
    proposal = propose_removals(read_texts(loaded.documents),
                                [Removal("support@contoso.com", "member", "CAROL@contoso.com")])
    proposal.write(None)
    text = (root / "mailboxes.yaml").read_text()
    assert "carol" not in text.split("send_as")[0] and "opens it by hand" not in text
    assert "\n\n      - group: support-team@contoso.com" in text  # the blank line belongs to what follows


def test_a_list_shared_through_an_anchor_is_left_for_a_person(tmp_path: Path) -> None:
    text = ("mailboxes:\n  - address: a@contoso.com\n    members: &team\n      - bob@contoso.com\n"
            "      - eve@contoso.com\n  - address: b@contoso.com\n    members: *team\n")
    proposal = propose_removals({"m.yaml": text}, [Removal("b@contoso.com", "member", "bob@contoso.com")])
    assert proposal.empty and [(m.path, m.line) for m in proposal.manual] == [("m.yaml", 7)]


def test_only_grant_rights_can_be_removed() -> None:
    with pytest.raises(ValueError, match="not a grant"):
        propose_removals({"m.yaml": "mailboxes: []\n"}, [Removal("a@contoso.com", "display_name", "x")])


def test_folder_roles_are_removed_like_grants() -> None:
    """A person's calendar role (a folder row of the rights table) goes like a grant; Default stays."""
    text = ("mailboxes:\n  - address: a@contoso.com\n    calendar:\n      default: limited_details\n"
            "      reviewer: [bob@contoso.com, eve@contoso.com]\n      editor:\n"
            "        - user: bob@contoso.com   # delegate while Eve is away\n          delegate: true\n"
            "        - eve@contoso.com\n")
    proposal = propose_removals({"m.yaml": text}, [Removal("a@contoso.com", "calendar_reviewer", "bob@contoso.com"),
                                                   Removal("a@contoso.com", "calendar_editor", "bob@contoso.com")])
    assert proposal.changes[0].lines == (5, 7, 8)
    assert proposal.changes[0].after.split("\n")[3:7] == [
        "      default: limited_details", "      reviewer: [eve@contoso.com]", "      editor:",
        "        - eve@contoso.com"]
    with pytest.raises(ValueError, match="not a grant"):
        propose_removals({"m.yaml": text}, [Removal("a@contoso.com", "calendar_default", "x@contoso.com")])


def test_a_path_folders_role_is_removed_by_its_path() -> None:
    """Every path folder shares the ``folder_*`` rows: the removal names the path, which may hold a dot."""
    text = ("mailboxes:\n  - address: a@contoso.com\n    folders:\n      inbox/Q1.Reports:\n"
            "        reviewer: [bob@contoso.com, eve@contoso.com]\n      inbox/Archive:\n"
            "        reviewer: [bob@contoso.com]\n")
    proposal = propose_removals({"m.yaml": text}, [Removal("a@contoso.com", "folder_reviewer", "bob@contoso.com",
                                                           "inbox/Q1.Reports")])
    assert proposal.changes[0].lines == (5,) and not proposal.missing
    assert proposal.changes[0].after.split("\n")[4:7] == [
        "        reviewer: [eve@contoso.com]", "      inbox/Archive:", "        reviewer: [bob@contoso.com]"]
    unnamed = propose_removals({"m.yaml": text}, [Removal("a@contoso.com", "folder_reviewer", "bob@contoso.com")])
    assert not unnamed.changes and len(unnamed.missing) == 1  # without its path no folder is guessed
