"""The README's compatibility table is the one scripts/compat-clients.py generates from
tests/compat/clients.json (the pins scripts/compat.sh installs) and the suites' test names; and
the newer-major check warns, or fails in its strict mode, when a registry has a newer major."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
TOOL = ROOT / "scripts" / "compat-clients.py"


def readme() -> Path:
    return Path(os.environ.get("VEXIL_README") or ROOT / "README.md")


@pytest.fixture
def tool():
    spec = importlib.util.spec_from_file_location("compat_clients", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_pins_and_the_suites():
    result = subprocess.run([sys.executable, str(TOOL), "check-readme", str(readme())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_installed_sdk_is_the_pinned_one(tool):
    import posthog.version

    pinned = {c["id"]: c["version"] for c in tool.clients()}
    assert posthog.version.VERSION == pinned["python"]


def test_a_stale_table_is_caught(tool, tmp_path):
    stale = readme().read_text(encoding="utf-8").replace(
        f"`posthog` {tool.client('python')['version']} ", "`posthog` 7.0.0 ", 1)
    path = tmp_path / "README.md"
    path.write_text(stale, encoding="utf-8")
    assert tool.check_readme(path) == 1


def test_newer_major_warns_and_fails_only_when_asked(tool, monkeypatch, capsys):
    monkeypatch.setattr(tool, "latest", lambda c: {"posthog": "8.0.0"}.get(c["package"], c["version"]))
    monkeypatch.delenv("VEXIL_COMPAT_NEWER", raising=False)
    assert tool.newer() == 0
    out = capsys.readouterr().out
    assert "WARNING: posthog 8.0.0 is a newer major" in out
    assert "posthog-node" in out and "WARNING: posthog-node" not in out
    monkeypatch.setenv("VEXIL_COMPAT_NEWER", "fail")
    assert tool.newer() == 1
    # A newer minor is news, not a failure; below 1.0 a minor is a major.
    monkeypatch.setattr(tool, "latest", lambda c: {"posthog": "7.99.0",
                                                    "open-feature-ofrep": "0.2.0"}.get(c["package"], c["version"]))
    assert tool.newer() == 1
    out = capsys.readouterr().out
    assert "posthog 7.99.0 is out" in out and "WARNING: open-feature-ofrep 0.2.0" in out
