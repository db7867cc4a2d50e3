"""The documentation matches the tool: README.md and docs/*.md name real commands and options, every
command has help, the README's Python example runs as written, and the docs say what is true now.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from opm_nlp.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: Files whose ``opm-nlp`` command lines are checked against the CLI.
COMMAND_DOCS = [README, ROOT / "docs" / "benchmarks.md"]
HISTORY = re.compile(r"session [0-9]|since session", re.IGNORECASE)
FENCE = re.compile(r"^\s*```")


def code_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """(language, line number of the first line, lines) of every fenced block, indented ones too."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            if language is None:
                language, start, lines = line.strip()[3:].strip(), number + 1, []
            else:
                blocks.append((language, start, lines))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) of every ``opm-nlp`` line in the file's code blocks.

    Continuations (a trailing backslash) are joined, comment lines skipped, a leading ``.venv/bin/``
    stripped.
    """
    found = []
    for language, start, lines in code_blocks(path):
        if language not in ("", "bash", "sh", "shell", "console"):
            continue
        joined, first = "", None
        for offset, line in enumerate(lines):
            text = line.strip()
            if first is None and (not text or text.startswith("#")):
                continue
            first = start + offset if first is None else first
            if text.endswith("\\"):
                joined += text[:-1] + " "
                continue
            command = " ".join((joined + text).split())
            joined, number, first = "", first, None
            command = command.removeprefix("$ ").removeprefix(".venv/bin/")
            if command.startswith("opm-nlp ") or command == "opm-nlp":
                found.append((number, command))
    return found


def _cases(paths) -> list:
    return [pytest.param(command, id=f"{path.name}:{number}: {command}")
            for path in paths for number, command in command_lines(path)]


def _option_names(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def resolve(command_line: str) -> tuple[list[str], list[str]]:
    """(path of sub-commands, problems) of one ``opm-nlp ...`` line, checked against the click group."""
    tokens = shlex.split(command_line, comments=True)[1:]
    command: click.Command = cli
    path, problems = [], []
    for token in tokens:
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            if name not in _option_names(command):
                problems.append(f"'{' '.join(['opm-nlp', *path])}' has no option {name}; options: "
                                f"{sorted(_option_names(command))}")
        elif isinstance(command, click.Group):
            if token not in command.commands:
                problems.append(f"'{' '.join(['opm-nlp', *path])}' has no command '{token}'; commands: "
                                f"{sorted(command.commands)}")
                break
            command = command.commands[token]
            path.append(token)
    if isinstance(command, click.Group) and not problems:
        problems.append(f"'{' '.join(['opm-nlp', *path])}' is a group: name one of its commands "
                        f"{sorted(command.commands)}")
    return path, problems


def all_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``group``, with its path of names."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += all_commands(command, (*path, name))
    return found


def test_docs_have_command_lines():
    assert len(command_lines(README)) >= 20, "the README's code blocks hold fewer opm-nlp commands than expected"


@pytest.mark.parametrize("command_line", _cases(COMMAND_DOCS))
def test_documented_command_exists(command_line):
    _, problems = resolve(command_line)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", [path for path, command in all_commands() if not isinstance(command, click.Group)],
                         ids=" ".join)
def test_commands_are_documented(path):
    documented = {tuple(resolve(line)[0]) for _, line in command_lines(README)}
    assert path in documented, f"'opm-nlp {' '.join(path)}' has no example in README.md's code blocks"


@pytest.mark.parametrize("path", [path for path, _ in all_commands()], ids=" ".join)
def test_commands_have_help(path):
    command = cli
    for name in path:
        command = command.commands[name]
    assert command.help and command.help.strip(), f"'opm-nlp {' '.join(path)}' is missing its help"
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="opm-nlp")
    assert result.exit_code == 0, result.output
    assert f"Usage: opm-nlp {' '.join(path)}" in result.output


def test_top_level_help():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert cli.help and cli.help.strip()


@pytest.mark.parametrize("command_line", _cases([README]))
def test_shipped_files_named_by_readme_exist(command_line):
    """Paths into the shipped data (examples/, codebook/opm_*, models/opm_default) exist."""
    for token in shlex.split(command_line, comments=True):
        if token.startswith(("examples/", "codebook/opm_", "models/opm_default")):
            assert (ROOT / token).exists(), f"{token} is not in the repository"


def python_blocks(path: Path) -> list[tuple[int, str]]:
    return [(start, "\n".join(lines)) for language, start, lines in code_blocks(path) if language == "python"]


def test_readme_python_api_runs(tmp_path, monkeypatch):
    blocks = python_blocks(README)
    assert len(blocks) == 1, f"README.md should hold one ```python block, found {len(blocks)}"
    start, source = blocks[0]
    imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", source, re.MULTILINE)
    assert imports and all(module == "opm_nlp" for module in imports), (
        f"the README's Python example should import from the top level only (from opm_nlp import ...): {imports}")
    for folder in ("codebook", "examples", "models"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    exec(compile("\n" * (start - 1) + source, str(README), "exec"), {"__name__": "readme_example"})
    assert (tmp_path / "tagged.csv").is_file()


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_say_what_is_true_now(path):
    hits = [f"{path.name}:{number}: {line.strip()}"
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if HISTORY.search(line)]
    assert not hits, "history belongs in git, not in the docs:\n" + "\n".join(hits)
