"""Runs the README's "5-minute walkthrough" as written: its curl commands through bash, its Python
block with the real SDK, against a fresh project; `print(...)  # X` lines must print X."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vexil_compat import env

STATUS_MARK = "\n__HTTP_STATUS__"


def walkthrough_section() -> str:
    readme = Path(os.environ.get("VEXIL_README") or Path(__file__).parents[4] / "README.md").read_text()
    m = re.search(r"^## 5-minute walkthrough\n(.*?)(?=^## )", readme, re.S | re.M)
    assert m, "README.md has no '## 5-minute walkthrough' section"
    return m.group(1)


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def curl_commands(block: str) -> list[str]:
    """The curl commands of a shell block, continuation lines joined (other lines are setup that
    scripts/compat.sh does itself: building, `project create`, `serve`, `export`)."""
    commands, current = [], None
    for line in block.splitlines():
        if current is None:
            if line.startswith("curl "):
                current = line
            else:
                continue
        else:
            current += "\n" + line
        if not line.rstrip().endswith("\\") and not _open_quote(current):
            commands.append(current)
            current = None
    assert current is None, f"unterminated command: {current}"
    return commands


def _open_quote(command: str) -> bool:
    # A single-quoted JSON body may span lines; count quotes outside double-quoted segments.
    return command.count("'") % 2 == 1


@pytest.fixture(scope="module")
def section():
    return walkthrough_section()


@pytest.fixture(scope="module")
def shell_outputs(section):
    assert shutil.which("curl"), "curl is required by the README walkthrough"
    for name in ("VEXIL_HOST", "VEXIL_TOKEN", "VEXIL_PERSONAL_KEY"):
        env(name)
    outputs = []
    for block in code_blocks(section, "sh"):
        for command in curl_commands(block):
            run = subprocess.run(
                ["bash", "-c", command.replace("curl ", f"curl -w '{STATUS_MARK}%{{http_code}}' ", 1)],
                capture_output=True, text=True, timeout=30,
            )
            assert run.returncode == 0, f"{command}\nexit {run.returncode}: {run.stderr}"
            body, _, status = run.stdout.rpartition(STATUS_MARK)
            outputs.append((command, int(status), json.loads(body) if body.strip() else None))
    return outputs


def test_the_walkthrough_has_the_expected_steps(section, shell_outputs):
    assert len(code_blocks(section, "python")) == 1
    assert [c.split('"$VEXIL_HOST')[1].split('"')[0] for c, _, _ in shell_outputs] == [
        "/api/projects/@current/feature_flags/", "/flags?v=2", "/batch/"]


def test_curl_create_flag(shell_outputs):
    _, status, flag = shell_outputs[0]
    assert status == 201, flag
    assert flag["key"] == "new-checkout" and isinstance(flag["id"], int)
    assert flag["active"] is True and flag["version"] == 1


def test_curl_evaluate(shell_outputs):
    _, status, body = shell_outputs[1]
    assert status == 200, body
    record = body["flags"]["new-checkout"]
    assert record["enabled"] is True
    assert json.loads(record["metadata"]["payload"]) == {"theme": "dark"}


def test_curl_capture(shell_outputs):
    _, status, body = shell_outputs[2]
    assert status == 200 and body == {"status": 1}, body


def test_python_block_prints_what_the_comments_say(section, shell_outputs):
    (block,) = code_blocks(section, "python")
    expected, in_print = [], False
    for line in block.splitlines():
        in_print = in_print or line.startswith("print(")
        if in_print and "  # " in line:
            comment = line.split("  # ", 1)[1].strip()
            expected.append(re.sub(r" \(.*\)$", "", comment))  # "True (stored by step 4)" -> "True"
            in_print = False
    assert len(expected) == 5, expected
    run = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected, run.stderr
