"""Exchange objects as the admin API serialises them: PascalCase, with ``@odata.type``
annotations on collections and GUIDs and ``@data.type`` on GUIDs and dates (A.4)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from localtenant.common import dotnet_offset, dotnet_utc, fake_sid
from localtenant.directory import GROUP_TYPE, RESOURCE_TYPES, DirObject, Tenant
from localtenant.exchange.models import (
    AUDIT_DEFAULTS,
    FORWARD_ACTIONS,
    MAILBOX_RIGHTS,
    InboxRule,
    MailboxGrant,
    cas_settings,
)

SELF = "NT AUTHORITY\\SELF"
SELF_SID = "S-1-5-10"


def _coll(doc: dict[str, Any], key: str, values: Sequence[Any]) -> None:
    doc[f"{key}@odata.type"] = "#Collection(String)"
    doc[key] = list(values)


def _guid(doc: dict[str, Any], key: str, value: str | None) -> None:
    doc[f"{key}@data.type"] = "System.Guid"
    doc[f"{key}@odata.type"] = "#Guid"
    doc[key] = value


def _date(doc: dict[str, Any], key: str, value: str | None) -> None:
    doc[f"{key}@data.type"] = "System.DateTime"
    doc[key] = dotnet_offset(value) if value else None


def _dn(obj: DirObject, tenant: Tenant) -> str:
    return (f"CN={obj.name},OU={tenant.initial_domain},OU=Microsoft Exchange Hosted Organizations,"
            "DC=EMUPR01A001,DC=PROD,DC=OUTLOOK,DC=COM")


def _common(obj: DirObject, addresses: Sequence[str], tenant: Tenant) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Identity": obj.name, "Id": obj.name, "Name": obj.name, "Alias": obj.alias,
        "DisplayName": obj.display_name, "PrimarySmtpAddress": obj.mail or "",
        "WindowsEmailAddress": obj.mail or "",
    }
    _coll(doc, "EmailAddresses", addresses)
    # A mail contact's or mail user's RecipientType is its type; every mailbox's is UserMailbox.
    doc["RecipientType"] = "MailUniversalSecurityGroup" if obj.rtd == GROUP_TYPE else \
        obj.rtd if obj.rtd in ("MailContact", "MailUser") else "UserMailbox"
    doc["RecipientTypeDetails"] = obj.rtd
    doc["ExternalDirectoryObjectId"] = obj.id
    _guid(doc, "ExchangeObjectId", obj.guid)
    _guid(doc, "Guid", obj.guid)
    doc["HiddenFromAddressListsEnabled"] = bool(obj.props.get("HiddenFromAddressListsEnabled", False))
    doc["DistinguishedName"] = _dn(obj, tenant)
    doc["OrganizationalUnitRoot"] = tenant.initial_domain
    doc["IsDirSynced"] = False
    _date(doc, "WhenCreated", obj.created)
    _date(doc, "WhenChanged", obj.changed)
    doc["WhenCreatedUTC"] = dotnet_utc(obj.created)
    doc["WhenChangedUTC"] = dotnet_utc(obj.changed)
    return doc


def mailbox(
    obj: DirObject, addresses: Sequence[str], send_on_behalf: Sequence[DirObject], tenant: Tenant,
    with_display_names: bool,
) -> dict[str, Any]:
    doc = _common(obj, addresses, tenant)
    doc["UserPrincipalName"] = obj.upn
    doc["IsShared"] = obj.rtd == "SharedMailbox"
    doc["IsResource"] = obj.rtd in RESOURCE_TYPES
    doc["ResourceType"] = {"RoomMailbox": "Room", "EquipmentMailbox": "Equipment"}.get(obj.rtd or "")
    doc["IsMailboxEnabled"] = True
    _guid(doc, "ExchangeGuid", obj.exchange_guid)
    # GrantSendOnBehalfTo holds recipient Names, not SMTP addresses, as the real service does.
    _coll(doc, "GrantSendOnBehalfTo", [t.name for t in send_on_behalf])
    if with_display_names:
        # [uncertain] element shape: one display-name string per entry, index-aligned.
        _coll(doc, "GrantSendOnBehalfToWithDisplayNames", [t.display_name for t in send_on_behalf])
    props = obj.props
    for n in range(1, 16):  # CustomAttribute1..15: free text an organisation uses as it likes
        doc[f"CustomAttribute{n}"] = str(props.get(f"CustomAttribute{n}") or "")
    doc["MessageCopyForSentAsEnabled"] = bool(props.get("MessageCopyForSentAsEnabled", False))
    doc["MessageCopyForSendOnBehalfEnabled"] = bool(props.get("MessageCopyForSendOnBehalfEnabled", False))
    # Mirrors the Entra user's accountEnabled (a new shared mailbox starts enabled).
    doc["AccountDisabled"] = not obj.account_enabled
    doc["AuditEnabled"] = bool(props.get("AuditEnabled", True))
    doc["AuditLogAgeLimit"] = "90.00:00:00"
    default_set = []
    for key, short in (("AuditAdmin", "Admin"), ("AuditDelegate", "Delegate"), ("AuditOwner", "Owner")):
        values = props.get(key, AUDIT_DEFAULTS[key])
        _coll(doc, key, values)
        if sorted(values) == sorted(AUDIT_DEFAULTS[key]):
            default_set.append(short)
    _coll(doc, "DefaultAuditSet", default_set)
    doc["ForwardingAddress"] = props.get("ForwardingAddress")
    doc["ForwardingSmtpAddress"] = props.get("ForwardingSmtpAddress")
    doc["DeliverToMailboxAndForward"] = bool(props.get("DeliverToMailboxAndForward", False))
    _date(doc, "WhenMailboxCreated", obj.created)
    doc["IsSoftDeletedByRemove"] = obj.soft_deleted
    doc["IsSoftDeletedByDisable"] = False
    doc["IsInactiveMailbox"] = False
    _date(doc, "WhenSoftDeleted", obj.when_soft_deleted)
    doc["RecipientSoftDeletedStatus@data.type"] = "System.Int32"
    doc["RecipientSoftDeletedStatus"] = 1 if obj.soft_deleted else 0
    return doc


def cas_mailbox(obj: DirObject, addresses: Sequence[str]) -> dict[str, Any]:
    """Get-CASMailbox's row: the identity properties and each protocol switch ([doc] cmdlet-property-sets,
    Get-EXOCasMailbox Minimum, plus SmtpClientAuthenticationDisabled, which Get-CASMailbox returns)."""
    doc: dict[str, Any] = {"Identity": obj.name, "Id": obj.name, "Name": obj.name, "DisplayName": obj.display_name,
                           "PrimarySmtpAddress": obj.mail or ""}
    _coll(doc, "EmailAddresses", addresses)
    doc["ExternalDirectoryObjectId"] = obj.id
    _guid(doc, "Guid", obj.guid)
    doc.update(cas_settings(obj.props))
    doc.update({"IsValid": True, "ObjectState": "Unchanged"})
    return doc


def inbox_rule(rule: InboxRule) -> dict[str, Any]:
    """Get-InboxRule's row ([doc: get-inboxrule]; forwarding targets in the ``"Name" [SMTP:x@y]`` form the
    cmdlet shows)."""
    doc: dict[str, Any] = {"Identity": f"{rule.mailbox.name}\\{rule.rule_id}", "RuleIdentity": rule.rule_id,
                           "Name": rule.name, "Enabled": rule.enabled, "MailboxOwnerId": rule.mailbox.name,
                           "Priority": 1, "InError": False, "StopProcessingRules": False}
    for action in FORWARD_ACTIONS:
        _coll(doc, action, rule.actions.get(action) or [])
    doc.update({"IsValid": True, "ObjectState": "Unchanged"})
    return doc


def accepted_domain(domain: str, tenant: Tenant) -> dict[str, Any]:
    """Get-AcceptedDomain's row. Every domain of an Exchange Online tenant is Authoritative here; the
    initial ``*.onmicrosoft.com`` one is InitialDomain, and the first accepted one is the Default.
    [uncertain] which domain is Default is the admin's choice in a real tenant."""
    return {"Identity": domain, "Id": domain, "Name": domain, "DomainName": domain,
            "DomainType": "Authoritative", "Default": domain == tenant.accepted_domains[0],
            "InitialDomain": domain == tenant.initial_domain, "MatchSubDomains": False,
            "IsValid": True, "ObjectState": "Unchanged"}


def recipient(obj: DirObject, addresses: Sequence[str], tenant: Tenant) -> dict[str, Any]:
    """Get-Recipient's reduced shape ([infer] low confidence on the exact property set)."""
    doc = _common(obj, addresses, tenant)
    doc["WindowsLiveID"] = obj.upn or ""
    if obj.is_mailbox:
        _guid(doc, "ExchangeGuid", obj.exchange_guid)
    return doc


def principal(obj: DirObject, tenant: Tenant) -> str:
    """Trustee as permission rows show it; a deleted trustee shows as its bare SID, like an
    orphaned ACE does."""
    return fake_sid(tenant.id, obj.seq) if obj.user_deleted else obj.principal_name


def mailbox_permission_self(mailbox_obj: DirObject) -> dict[str, Any]:
    return _mailbox_permission(mailbox_obj, SELF, ["FullAccess, ReadPermission"], "All", SELF_SID)


# The entries every Exchange Online mailbox inherits from its organisation (get-mailboxpermission's
# Description; exchange-features.md §9): Deny and Allow for the admin groups, SYSTEM, NETWORK SERVICE and
# Exchange's own servers. [uncertain] the exact rights of each and their order vary between datacentres and
# are not documented row by row; these are the ones the documentation's example shows. The domain prefix
# is the datacentre's NetBIOS name (NAMPR..., EURPR... in real tenants).
_NETBIOS = "EMUPR01A001"
_ALL_RIGHTS = "FullAccess, DeleteItem, ReadPermission, ChangePermission, ChangeOwner"
_ADMINS = (("Administrator", 500), ("Domain Admins", 512), ("Enterprise Admins", 519),
           ("Organization Management", 1108))


def _org_sid(rid: int) -> str:
    return f"S-1-5-21-3539623471-2474125567-2893472941-{rid}"


INHERITED: tuple[tuple[str, str, bool, str], ...] = (  # (User, AccessRights, Deny, SID)
    *((f"{_NETBIOS}\\{who}", "FullAccess", True, _org_sid(rid)) for who, rid in _ADMINS),
    ("NT AUTHORITY\\SYSTEM", "FullAccess", False, "S-1-5-18"),
    ("NT AUTHORITY\\NETWORK SERVICE", "ReadPermission", False, "S-1-5-20"),
    *((f"{_NETBIOS}\\{who}", _ALL_RIGHTS, False, _org_sid(rid)) for who, rid in _ADMINS),
    (f"{_NETBIOS}\\Exchange Servers", "FullAccess, ReadPermission", False, _org_sid(1117)),
    (f"{_NETBIOS}\\Exchange Trusted Subsystem", _ALL_RIGHTS, False, _org_sid(1119)),
    (f"{_NETBIOS}\\Managed Availability Servers", "ReadPermission", False, _org_sid(1126)),
)


def mailbox_permission_inherited(mailbox_obj: DirObject) -> list[dict[str, Any]]:
    """The inherited entries (IsInherited True), after the explicit ones as Exchange lists them."""
    rows = []
    for user, rights, deny, sid in INHERITED:
        row = _mailbox_permission(mailbox_obj, user, [rights], "All", sid)
        row.update({"Deny": deny, "IsInherited": True})
        rows.append(row)
    return rows


def mailbox_permission(mailbox_obj: DirObject, grant: MailboxGrant, tenant: Tenant) -> dict[str, Any]:
    rights = ", ".join(sorted(grant.rights, key=MAILBOX_RIGHTS.index))
    return _mailbox_permission(mailbox_obj, principal(grant.trustee, tenant), [rights], grant.inheritance,
                               fake_sid(tenant.id, grant.trustee.seq))


def _mailbox_permission(mbx: DirObject, user: str, rights: list[str], inheritance: str, sid: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"Identity": mbx.name, "User": user}
    _coll(doc, "AccessRights", rights)
    doc.update({"Deny": False, "IsInherited": False, "InheritanceType": inheritance, "UserSid": sid,
                "PrimarySmtpAddress": "", "IsValid": True, "ObjectState": "Unchanged"})
    return doc


def recipient_permission(mbx: DirObject, trustee: DirObject | None, tenant: Tenant) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Identity": mbx.name,
        "Trustee": SELF if trustee is None else principal(trustee, tenant),
        "AccessControlType": "Allow",
    }
    _coll(doc, "AccessRights", ["SendAs"])
    doc.update({"IsInherited": False, "InheritanceType": "None",
                "TrusteeSidString": SELF_SID if trustee is None else fake_sid(tenant.id, trustee.seq),
                "TrusteeWithPrimarySmtpAddress": "", "IsValid": True, "ObjectState": "Unchanged"})
    return doc


def select(doc: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    """``?$select=A,B`` keeps those properties and their annotations (case-insensitive)."""
    return {k: v for k, v in doc.items() if k.partition("@")[0].lower() in wanted}
