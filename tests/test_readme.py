"""The README is a door, and every command it shows runs as written: at most 300 lines, exactly two set-up
commands, every `nas ...` command parses with the real CLI, the fast ones run in a fresh folder, and every
relative link points at a file of the repository."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

README = (ROOT / "README.md").read_text()
MAX_LINES = 300
# (group, command) pairs that run in seconds on shipped data: the test runs every README command of these as written
FAST = {("spaces", "list"), ("spaces", "show"), ("arch", "list"), ("arch", "info"), ("arch", "sample"),
        ("lut", "list"), ("lut", "show"), ("lut", "predict"), ("lut", "suggest"), ("proxies", "list"), ("score", None)}


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def _commands() -> list[str]:
    """Every `nas ...` command in the README's bash blocks, in order (chains split at &&, comments dropped)."""
    out = []
    for block in _bash_blocks(README):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("  #")[0].strip()
                if part.startswith("nas "):
                    out.append(part)
    return out


def _key(argv: list[str]) -> tuple[str, str | None]:
    words = [a for a in argv if not a.startswith("-")]
    return words[0], (words[1] if len(words) > 1 and words[0] in {"spaces", "arch", "lut", "proxies"} else None)


def test_the_readme_is_short():
    assert len(README.splitlines()) <= MAX_LINES


def test_exactly_two_set_up_commands_one_line_each():
    blocks = _bash_blocks(_section("Set-up on a fresh machine"))
    assert len(blocks) == 2 and all(len(b.strip().splitlines()) == 1 for b in blocks)
    install, tests = (b.strip() for b in blocks)
    assert "pip install torch==2.13.0" in install and "nas search" in install
    assert tests.endswith("&& pytest")
    assert tests in (ROOT / ".ci" / "run").read_text(), ".ci/run must run the README's test command"


def test_the_readme_shows_commands_of_every_group():
    groups = {shlex.split(c)[1] for c in _commands()}
    assert {"spaces", "arch", "lut", "score", "search", "pareto", "export"} <= groups


@pytest.mark.parametrize("command", _commands())
def test_every_command_parses(command):
    from nas.cli import build_parser

    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)  # argparse exits on an unknown flag or a bad choice
    assert callable(args.func)


FAST_COMMANDS = [c for c in _commands() if _key(shlex.split(c)[1:]) in FAST]


def test_there_are_fast_commands_to_run():
    assert len(FAST_COMMANDS) >= 6


def test_the_fast_commands_run_as_written(tmp_path):
    """In the order the README gives them, in one fresh folder (a later command may read an earlier one's file)."""
    env = {**os.environ, "NAS_TABLES_DIR": str(tmp_path / "tables")}
    for command in FAST_COMMANDS:
        argv = [sys.executable, "-m", "nas.cli"] + shlex.split(command)[1:]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr}"


def test_every_relative_link_points_at_a_file():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local and [link for link in local if not (ROOT / link).exists()] == []
