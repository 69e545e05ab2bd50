"""The HTML drift report, opened in headless Chromium (Debian's chromium, installed by make setup)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.core.textsafe import UNSAFE, printable
from mailroom.drift.scan import DriftFinding, ScanResult
from mailroom.file.load import load_desired
from mailroom.reconcile.live import LiveMailbox
from mailroom.views import report
from pypdf import PdfReader
from reconcile_helpers import ROOT, Project
from report_scale import synthetic
from test_drift import ADMIN, out_of_band

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: run `make setup` (ci/install-chromium.sh)"
    return path


def test_html_report_opens_in_chromium_with_provenance_access_and_csv(tmp_path: Path, local_tenant: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    assert project.run("apply", "--yes")[0] == 0
    out_of_band(local_tenant)
    resp = local_tenant.exchange("Add-RecipientPermission", username=ADMIN, Identity="marketing@contoso.com",
                                 Trustee="mallory@contoso.com", AccessRights=["SendAs"])
    assert resp.status_code == 200, resp.text
    html, table = tmp_path / "report.html", tmp_path / "report.csv"
    assert project.run("drift", "--html", str(html), "--csv", str(table))[0] == 2
    profile = tmp_path / "chrome-profile"
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert "mailroom drift report" in dom
    assert 'id="provenance"' in dom and ">local<" in dom and "not a git checkout" in dom  # stack, commit
    assert 'id="access"' in dom and 'id="findings"' in dom
    assert dom.count("class=\"finding\"") + dom.count("class=\"finding sev-high\"") == 7
    # Mallory's Full Access on support is drift, said in words; the owner is shown
    assert re.search(r"mallory@contoso\.com FA <span class=\"st st-extra\">EXTRA</span>", dom)
    assert "owner alice@contoso.com" in dom
    # the unmanaged mailbox's access is on the page, marked as such
    assert re.search(r"marketing@contoso\.com <span class=\"st st-unmanaged\">UNMANAGED</span>", dom)
    assert "trent@contoso.com" in dom  # who made the change
    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1400,1000", f"--screenshot={shot}", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    keys = [(r["mailbox"].casefold(), r["person"].casefold(), r["right"]) for r in rows]
    assert len(keys) == len(set(keys))  # one row per mailbox × person × right
    by_key = {k: r for k, r in zip(keys, rows, strict=True)}
    assert by_key[("support@contoso.com", "mallory@contoso.com", "member")]["status"] == "extra"
    assert by_key[("support@contoso.com", "mallory@contoso.com", "member")]["removed_by"] == "drift --remediate"
    assert by_key[("marketing@contoso.com", "mallory@contoso.com", "send_as")]["status"] == "unmanaged"
    assert by_key[("support@contoso.com", "alice@contoso.com", "member")]["status"] == "ok"


def test_report_at_5000_mailboxes_is_small_renders_and_prints_every_finding(tmp_path: Path) -> None:
    """Issue 15's scale: 5,000 mailboxes and 20,000 people, drift's own findings, through the real view code;
    the page stays under 2 MB, Chromium renders it and prints it to PDF, and every finding is in the PDF's
    text, inside the page (nothing falls off the right edge); the CSV has one row per mailbox × person × right."""
    found, desired, result = synthetic()
    page = tmp_path / "report.html"
    page.write_text(report.render_html(found, desired, result, "now"), encoding="utf-8")
    assert page.stat().st_size < 2_000_000, page.stat().st_size
    profile = tmp_path / "chrome-profile"
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    assert dom.count("<h3") == 5_000 + 200 and dom.count("class=\"finding") == len(found)
    pdf = tmp_path / "report.pdf"
    subprocess.run([*common, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                   capture_output=True, timeout=600, check=True)
    reader = PdfReader(pdf)
    texts, outside = [], []
    for number, sheet in enumerate(reader.pages):
        width = float(sheet.mediabox.width)

        def visit(text: str, cm: list[float], tm: list[float], _font: Any, _size: Any,
                  width: float = width, number: int = number) -> None:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            if text.strip() and not 0 <= x < width:
                outside.append((number, x, text))

        texts.append(sheet.extract_text(visitor_text=visit))
    assert not outside, outside[:5]
    printed = re.sub(r"\s+", "", unicodedata.normalize("NFKC", "".join(texts)))
    for f in found:  # each finding's row: its mailbox, then its subject, as printed
        row = re.sub(r"\s+", "", f.mailbox + f.kind.replace("_", " ") + (f.right or "") + (f.subject or ""))
        assert row in printed, f
    assert all(re.sub(r"\s+", "", mb.address) in printed for mb in desired.mailboxes)
    rows = list(csv.reader(io.StringIO(report.render_csv(found, desired, result))))
    assert rows[0] == list(report.CSV_FIELDS)
    keys = {(r[0], r[3], r[4]) for r in rows[1:]}
    grants = sum(len(live.spec.grants()) for live in result.live.values())
    missing = sum(1 for f in found if f.kind == "missing_grant")
    assert len(rows) - 1 == len(keys) == grants + missing


# -- tenant values cannot act as markup or commands (safety issue 9) ------------------------------

HOSTILE = ["x\n```\n<!-- ", "<script>alert(1)</script>", "\x1b[2J", "\u202egnp.exe", "<img src=x onerror=alert(1)>",
           "' onmouseover='alert(1)", '" autofocus onfocus="alert(1)', "a|b`c\\|d", "</td></tr></table><h1>x"]
# Elements the report itself uses: anything else in the DOM was injected.
REPORT_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead", "tbody",
               "tr", "th", "td", "ul", "li", "b", "span", "div", "dl", "dt", "dd", "a", "label", "input"}


class DomReader(HTMLParser):
    """Elements, attributes and text of a DOM as Chromium serialised it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []
        self.titles: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs |= {name for name, _ in attrs}
        self.titles += [value or "" for name, value in attrs if name == "title"]
        self.hrefs += [value or "" for name, value in attrs if name == "href"]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def chromium_dom(path: Path, profile: Path) -> DomReader:
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    reader = DomReader()
    reader.feed(dom)
    return reader


def assert_inert_html(path: Path, profile: Path, values: list[str]) -> None:
    """Opened in Chromium: no element or attribute beyond the report's own, and each value shown as
    text, escaped (``\\u202e`` written out, not obeyed)."""
    dom = chromium_dom(path, profile)
    assert dom.tags <= REPORT_TAGS, dom.tags - REPORT_TAGS
    assert dom.attrs <= {"lang", "charset", "name", "content", "id", "class", "title", "colspan", "http-equiv",
                         "href", "type"}, dom.attrs
    assert all(h.startswith("#") for h in dom.hrefs), dom.hrefs  # links stay on the page
    text = "".join(dom.text)
    assert not UNSAFE.search(text.replace("\n", "").replace("\t", "")) and not any(UNSAFE.search(t)
                                                                                    for t in dom.titles)
    for value in values:
        assert printable(value) in text, value


def delimiters(row: str) -> int:
    """Pipes that split a GFM table row: those not escaped by an odd run of backslashes."""
    count = 0
    for m in re.finditer(r"\|", row):
        before = row[:m.start()]
        count += (len(before) - len(before.rstrip("\\"))) % 2 == 0
    return count


def outside_code_spans(line: str) -> str:
    """``line`` without its code spans (CommonMark: n backticks open one, the next run of exactly n
    closes it; what is inside is literal text, so a ``<!--`` there opens nothing)."""
    out, i = [], 0
    while (opener := re.compile("`+").search(line, i)) is not None:
        n = len(opener.group())
        closer = next((m for m in re.finditer("`+", line[opener.end():]) if len(m.group()) == n), None)
        if closer is None:
            break
        out.append(line[i:opener.start()])
        i = opener.end() + closer.end()
    return "".join(out) + line[i:]


def assert_inert_markdown(text: str, findings: int) -> None:
    """No fence, HTML or comment; one table row per finding, each with exactly seven cells."""
    lines = text.splitlines()
    assert not any("<" in outside_code_spans(line) for line in lines)
    assert not UNSAFE.search(text.replace("\n", ""))
    assert not any(re.match(r" {0,3}(`{3,}|~{3,})", line) for line in lines)
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == 2 + findings
    assert all(delimiters(row) == 8 for row in rows), [row for row in rows if delimiters(row) != 8]
    assert all(line.startswith("|") for line in lines[lines.index(rows[0]):lines.index(rows[-1]) + 1])


def assert_inert_terminal(text: str) -> None:
    assert "\x1b" not in text and not UNSAFE.search(text.replace("\n", ""))


def hostile_findings() -> list[DriftFinding]:
    out = []
    for v in HOSTILE:
        out += [DriftFinding("extra_grant", "support@contoso.com", "member", v, actual=True, changed_by=v,
                             changed_at=v, first_seen=v),
                DriftFinding("missing_grant", "support@contoso.com", "send_as", v, expected=True),
                DriftFinding("changed_setting", "info@contoso.com", "display_name", expected="Info", actual=v),
                DriftFinding("unmanaged_mailbox", v, "mailbox", detail=v),
                DriftFinding("scan_error", "info@contoso.com", detail=v)]
    return out


def test_hostile_values_in_every_field_stay_text(tmp_path: Path) -> None:
    found = hostile_findings()
    resolved = [{"mailbox": v, "right": v, "subject": v} for v in HOSTILE]
    text = report.render_text(found, resolved)
    assert_inert_terminal(text)
    assert len(text.splitlines()) == len(found) + len(resolved) + 2  # one line each, then the summary

    markdown = report.render_markdown(found, resolved)
    assert_inert_markdown(markdown, len(found))

    loaded = load_desired(str(ROOT / "mailboxes.yaml"))
    assert loaded.desired is not None
    result = ScanResult(unmanaged=[{"PrimarySmtpAddress": v, "DisplayName": v} for v in HOSTILE])
    # an unmanaged mailbox whose grants name formulas: the CSV must not hand them to a spreadsheet as formulas
    formulas = ['=HYPERLINK("http://x.example","y")', "@SUM(1)", "+1", "-1"]
    result.live["formula@contoso.com"] = LiveMailbox(MailboxSpec("formula@contoso.com", members=tuple(
        Grant(f) for f in formulas)), "g", "o")
    result.unmanaged.append({"PrimarySmtpAddress": "formula@contoso.com", "DisplayName": "-2+3"})
    page = tmp_path / "report.html"
    page.write_text(report.render_html(found, loaded.desired, result, "now"), encoding="utf-8")
    assert_inert_html(page, tmp_path / "chrome-profile", HOSTILE)
    shown = chromium_dom(page, tmp_path / "chrome-profile")
    assert "<script>alert(1)</script>" in "".join(shown.text)  # a person's name is shown raw, as text
    table = list(csv.reader(io.StringIO(report.render_csv(found, loaded.desired, result))))
    assert not any(cell[:1] in "=+-@" for row in table for cell in row if cell)
    assert sorted(row[3] for row in table if row[0] == "formula@contoso.com") == sorted("'" + f for f in formulas)


def test_hostile_tenant_display_names_in_a_real_drift_run(tmp_path: Path, local_tenant: Any,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    assert project.run("apply", "--yes")[0] == 0
    names = ["x\n```\n<!-- ", "<script>alert(1)</script>\x1b[2J", "\u202egnp.exe"]
    resp = local_tenant.exchange("Set-Mailbox", username=ADMIN, Identity="support@contoso.com",
                                 DisplayName=names[0])
    assert resp.status_code == 200, resp.text
    for i, name in enumerate(names[1:]):
        resp = local_tenant.exchange("New-Mailbox", username=ADMIN, Shared=True, Name=f"evil{i}", DisplayName=name,
                                     PrimarySmtpAddress=f"evil{i}@contoso.com")
        assert resp.status_code == 200, resp.text
    page, markdown = tmp_path / "report.html", tmp_path / "report.md"
    code, out = project.run("drift", "--html", str(page), "--markdown", str(markdown), capsys=capsys)
    assert code == 2
    assert_inert_terminal(out)
    assert "\\u001b[2J" in out and "\\u202egnp.exe" in out  # the escapes are shown, not obeyed
    assert_inert_markdown(markdown.read_text(), len(out.split("\n\n")[0].splitlines()))
    assert_inert_html(page, tmp_path / "chrome-profile", names)
