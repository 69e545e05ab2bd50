"""The real Pulumi engine, through mailroom's wrapper, on a tiny program with one dynamic resource.

preview shows a create; up creates; a second preview shows no change; an
out-of-band change is reported by refresh-preview; destroy removes it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mailroom.engine import Engine, EngineSettings, pulumi_bin_dir

PROVIDER = '''
from pathlib import Path
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult


class FileProvider(ResourceProvider):
    def create(self, props):
        Path(props["path"]).write_text(props["content"])
        return CreateResult(props["path"], dict(props))

    def read(self, id_, props):
        path = Path(id_)
        if not path.exists():
            return ReadResult(None, {})
        return ReadResult(id_, {**props, "content": path.read_text()})

    def diff(self, id_, olds, news):
        return DiffResult(changes=olds.get("content") != news.get("content"))

    def update(self, id_, olds, news):
        Path(id_).write_text(news["content"])
        return UpdateResult(dict(news))

    def delete(self, id_, props):
        Path(id_).unlink(missing_ok=True)


class File(Resource, module="smoke", name="File"):
    def __init__(self, name, path, content):
        super().__init__(FileProvider(), name, {"path": path, "content": content})
'''

PROGRAM = '''
import os
from fileprov import File

File("greeting", os.environ["SMOKE_FILE"], "hello")
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    venv = Path(sys.executable).parents[1]
    (proj / "Pulumi.yaml").write_text(textwrap.dedent(f"""\
        name: smoke
        runtime:
          name: python
          options:
            toolchain: pip
            virtualenv: {venv}
        """))
    (proj / "fileprov.py").write_text(PROVIDER)
    (proj / "__main__.py").write_text(PROGRAM)
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", (tmp_path / "state").as_uri())
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "smoke-test")
    monkeypatch.setenv("SMOKE_FILE", str(tmp_path / "out.txt"))
    return proj


def _ops(summary: dict[str, int] | None) -> dict[str, int]:
    return {k: v for k, v in (summary or {}).items() if k != "same"}


def test_engine_version_is_linked_in() -> None:
    out = subprocess.run([str(pulumi_bin_dir() / "pulumi"), "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("v3.")  # an empty version would make the Automation API refuse it


def test_engine_lifecycle(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    events: list[object] = []
    engine = Engine(EngineSettings("smoke", project_dir=project))

    preview = engine.preview(events.append)
    assert _ops(preview.change_summary) == {"create": 2}  # the stack and the file
    assert any(getattr(e, "resource_pre_event", None) for e in events)  # events reach the callback
    assert not target.exists()

    up = engine.up()
    assert up.summary.result == "succeeded"
    assert target.read_text() == "hello"

    assert _ops(engine.preview().change_summary) == {}

    target.write_text("changed by hand")  # out of band
    drift = engine.refresh_preview()
    assert drift.change_summary.get("update") == 1
    assert target.read_text() == "changed by hand"  # a refresh preview changes nothing

    engine.up(refresh=True)
    assert target.read_text() == "hello"

    engine.destroy()
    assert not target.exists()
