"""Seeding the emulator's directory from a YAML (or JSON) file.

Format (``infra/localtenant/data/directory.yaml`` is the shipped example)::

    tenant:
      id: 7c1d5a2e-...            # tenant GUID (the token ``tid``; also accepted in URLs)
      name: Contoso               # optional
      initial_domain: contoso.onmicrosoft.com
      accepted_domains: [contoso.com, contoso.onmicrosoft.com]   # initial domain added if missing
    users:                        # Entra users; by default each also has a user mailbox
      - upn: alice@contoso.com    # required; also the primary SMTP address
        display_name: Alice Anderson          # required
        given_name: Alice                     # optional, as are surname, job_title, department
        account_enabled: true                 # optional, default true
        mailbox: true                         # optional, default true (UserMailbox recipient)
        password: ...                         # optional; when set, the password grant checks it
        aliases: [a.anderson@contoso.com]     # optional secondary SMTP addresses
    groups:                       # mail-enabled security groups (MailUniversalSecurityGroup)
      - name: finance-team        # required; the Exchange Name permission rows show
        display_name: Finance Team            # optional, default name
        mail: finance-team@contoso.com        # required; primary SMTP address
        members: [alice@contoso.com, payroll-team@contoso.com]   # optional: users (UPN) and groups (mail or
                                              # name), nested groups included; any order in the file
    shared_mailboxes:             # optional; pre-existing shared mailboxes (e.g. for benchmarks)
      - name: sales               # required
        display_name: Sales                   # optional
        primary_smtp_address: sales@contoso.com   # optional (default alias@initial domain)
        alias: sales                          # optional
        aliases: [sales-team@contoso.com]     # optional secondary addresses
        full_access: [alice@contoso.com]      # optional trustees (any identity form)
        send_as: [alice@contoso.com]
        send_on_behalf: [bob@contoso.com]
        language: de-DE                       # optional; its folders take that language's names (Kalender)
        folders: [Posteingang/Reports]        # optional; folders its users made (parent first), as
                                              # POST /_emulator/mapi/folders makes them
    resource_mailboxes:           # optional; room and equipment mailboxes (Entra user sign-in disabled)
      - name: room-1              # required
        type: room                # required: room (RoomMailbox) or equipment (EquipmentMailbox)
        display_name: Room 1                  # optional
        primary_smtp_address: room-1@contoso.com  # optional (default alias@initial domain)
        alias: room-1                         # optional

Object ids are derived from the tenant id and the UPN / mail / name, so the same file gives
the same ids on every run. Seeding is idempotent: objects that already exist (same UPN,
mail or shared mailbox name) are left alone. Seeded objects write no audit entries: they
are the tenant as it was before anyone ran mailroom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localtenant.directory import (
    GROUP_TYPE,
    DirectoryError,
    Tenant,
    add_member,
    addresses_of,
    find_recipients,
    get_many,
    get_user,
    insert_object,
    load_tenant,
    parse_proxy,
    replace_addresses,
    resolve,
    save_tenant,
    stable_object_id,
)
from localtenant.exchange import folders as exchange_folders
from localtenant.exchange import models
from localtenant.store import Store

SHIPPED = Path(__file__).parent / "data" / "directory.yaml"
RESOURCE_KINDS = {"room": "RoomMailbox", "equipment": "EquipmentMailbox"}


class SeedError(ValueError):
    pass


@dataclass
class SeedReport:
    users: int = 0
    groups: int = 0
    shared_mailboxes: int = 0
    resource_mailboxes: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (f"seeded {self.users} users, {self.groups} groups, {self.shared_mailboxes} shared mailboxes, "
                f"{self.resource_mailboxes} resource mailboxes ({self.skipped} already present)")


def load_file(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        # The C loader when PyYAML has it: a 5,000-mailbox benchmark seed parses ~5x faster.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = json.loads(text) if str(path).endswith(".json") else yaml.load(text, Loader=loader)
    except (ValueError, yaml.YAMLError) as err:
        raise SeedError(f"{path}: not valid YAML/JSON: {err}") from err
    if not isinstance(doc, dict):
        raise SeedError(f"{path}: the top level must be a mapping with tenant/users/groups")
    return doc


def _field(item: Any, key: str, where: str, required: bool = True) -> Any:
    if not isinstance(item, dict):
        raise SeedError(f"{where}: must be a mapping")
    value = item.get(key)
    if required and (value is None or value == ""):
        raise SeedError(f"{where}.{key}: required")
    return value


def _tenant(doc: dict[str, Any], where: str) -> Tenant:
    t = doc.get("tenant")
    if not isinstance(t, dict):
        raise SeedError(f"{where}: tenant: required mapping with id and initial_domain")
    tid = str(_field(t, "id", f"{where}: tenant")).lower()
    initial = str(_field(t, "initial_domain", f"{where}: tenant")).lower()
    domains = [str(d).lower() for d in (t.get("accepted_domains") or [])]
    if initial not in domains:
        domains.append(initial)
    return Tenant(id=tid, name=str(t.get("name") or initial.split(".")[0].title()), initial_domain=initial,
                  accepted_domains=tuple(domains))


def _list(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise SeedError(f"{where}: {key} must be a list")
    return value


def seed(store: Store, doc: dict[str, Any], source: str = "<seed>") -> SeedReport:
    """Apply a seed document in one transaction (all or nothing)."""
    report = SeedReport()
    wanted = _tenant(doc, source)
    with store.tx() as conn:
        current = load_tenant(conn)
        if current is None:
            save_tenant(conn, wanted)
            current = wanted
        elif current.id != wanted.id:
            raise SeedError(f"{source}: the state belongs to tenant {current.id}, not {wanted.id}")
        tenant = current
        seeded: list[tuple[str, dict[str, Any]]] = []  # groups created now: their members are added below
        try:
            for i, item in enumerate(_list(doc, "users", source)):
                where = f"{source}: users[{i}]"
                upn = str(_field(item, "upn", where))
                if conn.execute("SELECT 1 FROM objects WHERE upn_l = ?", (upn.lower(),)).fetchone():
                    report.skipped += 1
                    continue
                _seed_user(conn, tenant, item, upn)
                report.users += 1
            for i, item in enumerate(_list(doc, "groups", source)):
                where = f"{source}: groups[{i}]"
                mail = str(_field(item, "mail", where))
                if find_recipients(conn, mail, "any"):
                    report.skipped += 1
                    continue
                name = str(_field(item, "name", where))
                alias = mail.partition("@")[0]
                insert_object(conn, kind="group", display_name=str(item.get("display_name") or name), rtd=GROUP_TYPE,
                              name=name, alias=alias, object_id=stable_object_id(tenant, mail),
                              addresses=[(mail, True), (f"{alias}@{tenant.initial_domain}", False)])
                report.groups += 1
                seeded.append((where, item))
            for where, item in seeded:  # once every group exists: a group may name one listed after it
                _seed_members(conn, item, where)
            for i, item in enumerate(_list(doc, "shared_mailboxes", source)):
                where = f"{source}: shared_mailboxes[{i}]"
                name = str(_field(item, "name", where))
                if find_recipients(conn, name, "any"):
                    report.skipped += 1
                    continue
                _seed_shared(conn, tenant, item, name, where)
                report.shared_mailboxes += 1
            for i, item in enumerate(_list(doc, "resource_mailboxes", source)):
                where = f"{source}: resource_mailboxes[{i}]"
                name = str(_field(item, "name", where))
                kind = RESOURCE_KINDS.get(str(_field(item, "type", where)).lower())
                if kind is None:
                    raise SeedError(f"{where}.type: must be one of {', '.join(RESOURCE_KINDS)}")
                if find_recipients(conn, name, "any"):
                    report.skipped += 1
                    continue
                models.new_shared_mailbox(conn, tenant, name=name, display_name=item.get("display_name"),
                                          primary=item.get("primary_smtp_address"), alias=item.get("alias"),
                                          audit=False, rtd=kind, object_id=stable_object_id(tenant, name))
                report.resource_mailboxes += 1
        except DirectoryError as err:
            raise SeedError(f"{source}: {err.text}") from err
    return report


def _seed_user(conn: Any, tenant: Tenant, item: dict[str, Any], upn: str) -> None:
    alias = upn.partition("@")[0]
    has_mailbox = item.get("mailbox", True) is not False
    props: dict[str, Any] = models.mailbox_defaults() if has_mailbox else {}
    for key, prop in (("given_name", "givenName"), ("surname", "surname"), ("job_title", "jobTitle"),
                      ("department", "department")):
        if item.get(key):
            props[prop] = str(item[key])
    if item.get("password"):
        props["password"] = str(item["password"])
    addresses = [(upn, True), (f"{alias}@{tenant.initial_domain}", False)] if has_mailbox else []
    addresses += [parse_proxy(str(a), tenant) for a in item.get("aliases") or []]
    insert_object(conn, kind="user", display_name=str(_field(item, "display_name", upn)), upn=upn,
                  account_enabled=item.get("account_enabled", True) is not False,
                  rtd="UserMailbox" if has_mailbox else None, name=alias if has_mailbox else None,
                  alias=alias if has_mailbox else None, object_id=stable_object_id(tenant, upn),
                  addresses=addresses, props=props)


def _seed_members(conn: Any, item: dict[str, Any], where: str) -> None:
    members = item.get("members") or []
    if not isinstance(members, list):
        raise SeedError(f"{where}.members: must be a list of users (UPN) and groups (mail or name)")
    group = resolve(conn, str(item["mail"]))
    for j, raw in enumerate(members):
        key = str(raw)
        try:  # a user without a mailbox is no recipient: Graph addressing (UPN) finds it
            member = get_user(conn, key) if "@" in key and not find_recipients(conn, key, "live") \
                else resolve(conn, key)
            add_member(conn, group, member)
        except DirectoryError as err:
            raise SeedError(f"{where}.members[{j}]: {key}: {err.text}") from err


def _seed_shared(conn: Any, tenant: Tenant, item: dict[str, Any], name: str, where: str) -> None:
    mbx = models.new_shared_mailbox(conn, tenant, name=name, display_name=item.get("display_name"),
                                    primary=item.get("primary_smtp_address"), alias=item.get("alias"), audit=False)
    if item.get("language"):  # as Set-MailboxRegionalConfiguration -LocalizeDefaultFolderName leaves it
        models.update_object(conn, mbx, props={**mbx.props, "Language": str(item["language"]),
                                               "RegionalLanguage": str(item["language"])})
    named = get_many(conn, [mbx.seq])[mbx.seq]  # as the language left it: a parent is found by its name
    for j, path in enumerate(item.get("folders") or []):
        try:
            exchange_folders.create_folder(conn, named, str(path))
        except ValueError as err:
            raise SeedError(f"{where}.folders[{j}]: {err}") from err
    extra = [parse_proxy(str(a), tenant) for a in item.get("aliases") or []]
    if extra:
        current = [parse_proxy(v, tenant) for v in addresses_of(conn, [mbx.seq])[mbx.seq]]
        replace_addresses(conn, mbx.seq, current + extra)
    for trustee in item.get("full_access") or []:
        models.add_mailbox_grant(conn, mbx, resolve(conn, str(trustee)), ["FullAccess"], "All", True)
    for trustee in item.get("send_as") or []:
        models.add_recipient_grant(conn, mbx, resolve(conn, str(trustee)), ["SendAs"])
    delegates = [resolve(conn, str(t)) for t in item.get("send_on_behalf") or []]
    if delegates:
        models.set_send_on_behalf(conn, mbx, delegates)

