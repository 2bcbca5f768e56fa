"""The documentation's examples work: its Python blocks run, its commands exist.

Pages: ``docs/**/*.md`` and the model cards ``progface/weights/*.md`` (the site shows them too).

- Every fenced ``python`` block runs, in page order, in one namespace per page (a later block
  may use what an earlier one defined), in a fresh temporary folder. A block that needs a GPU
  or big data is skipped when the line before it is ``<!-- no-run -->`` (or its info string
  says ``no-run``); ``NO_RUN_ALLOWED`` caps how many there are, so the list stays short.
- Every ``progface`` command line in a ``bash`` block (also ``python -m progface`` and
  ``torchrun ... -m progface``) names an existing command, and every ``--option`` (or short
  ``-o``) exists on that command; a literal value of a choice option is one of its choices.
  Nothing is executed: click resolves the command path.
- The CLI reference (``docs/cli.md``, rendered by mkdocs-click) shows every command that
  click can reach from the root group, lazily loaded ones included.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
CARDS = REPO / "progface" / "weights"
PAGES = sorted(DOCS.rglob("*.md")) + sorted(CARDS.glob("*.md"))
NO_RUN = "<!-- no-run -->"
NO_RUN_ALLOWED = 4  # python blocks that may be skipped (GPU, big data), all pages together


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    info: str
    code: str
    no_run: bool

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (backtick or tilde fences, any indent)."""
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)(.*)$", lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, lang, info = opening.groups()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^\s*{re.escape(fence)}\s*$", lines[j]):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        no_run = before == NO_RUN or "no-run" in info.split()
        blocks.append(Block(page, i + 1, lang.lower(), info, "\n".join(body) + "\n", no_run))
        i = j + 1
    return blocks


BLOCKS = [b for page in PAGES for b in fenced_blocks(page)]
PYTHON_PAGES = sorted({b.page for b in BLOCKS if b.lang in ("python", "py")})


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


# --- python blocks -------------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A temporary working folder; plugins, CLI commands, environment, sys.path and imported
    modules as they were once the example is done."""
    from progface import plugins
    from progface.cli import cli

    plugins.load_plugins()
    before_plugins = {name for name, _ in plugins.pm.list_name_plugin()}
    groups = [cmd for cmd in _all_commands(cli) if isinstance(cmd, click.Group)]
    before_commands = {id(g): dict(g.commands) for g in groups}
    before_modules, before_path, before_env = set(sys.modules), list(sys.path), dict(os.environ)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in {name for name, _ in plugins.pm.list_name_plugin()} - before_plugins:
        plugins.pm.unregister(name=name)
    for group in groups:
        group.commands.clear()
        group.commands.update(before_commands[id(group)])
    for name in set(sys.modules) - before_modules:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "") or ""):
            del sys.modules[name]
    sys.path[:] = before_path
    os.environ.clear()
    os.environ.update(before_env)
    plugins.failures.clear()
    plugins.reset()


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_page_id)
def test_python_examples_run(page, isolated):
    blocks = [b for b in BLOCKS if b.page == page and b.lang in ("python", "py")]
    # a real module, so that examples can register themselves as a plugin module
    module = types.ModuleType("doc_example")
    sys.modules[module.__name__] = module
    try:
        for block in blocks:
            if block.no_run:
                continue
            # padded so that a traceback's line numbers are those of the page
            code = compile("\n" * block.line + block.code, _page_id(page), "exec")
            try:
                exec(code, module.__dict__)
            except Exception as err:
                raise AssertionError(f"the example at {block.where} failed: {err!r}") from err
    finally:
        del sys.modules[module.__name__]


def test_few_examples_are_skipped():
    skipped = [b.where for b in BLOCKS if b.lang in ("python", "py") and b.no_run]
    assert len(skipped) <= NO_RUN_ALLOWED, f"too many no-run examples: {skipped}"


# --- bash blocks ---------------------------------------------------------------------------


def command_lines(code: str) -> list[list[str]]:
    """The argument lists after ``progface`` of every progface command in a shell block."""
    joined = re.sub(r"\\\n", " ", code)
    found = []
    for line in joined.splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:  # an unbalanced quote across a split: take the whole line
                words = shlex.split(line, comments=True)
            while words and words[0] in ("do", "then", "else", "time", "nice"):
                words = words[1:]
            if words and words[0] == "progface":
                found.append(words[1:])
            elif "-m" in words and words[words.index("-m") + 1 :][:1] == ["progface"]:
                found.append(words[words.index("-m") + 2 :])
    return found


def _all_commands(command: click.Command):
    yield command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                yield from _all_commands(sub)


def _option_names(command: click.Command) -> dict[str, click.Parameter]:
    names = {"--help": None}
    for param in command.params:
        if isinstance(param, click.Option):
            names |= dict.fromkeys([*param.opts, *param.secondary_opts], param)
    return names


def check_command(args: list[str]) -> str | None:
    """None when ``progface ARGS`` names an existing command with existing options; else why."""
    from progface.cli import cli

    command, path = cli, ["progface"]
    i = 0
    while i < len(args):
        word = args[i]
        if word.startswith("-") and len(word) > 1:
            name, has_value = word.split("=", 1)[0], "=" in word
            options = _option_names(command)
            if name not in options:
                return f"{' '.join(path)}: no option {name}"
            param = options[name]
            takes_value = param is not None and not param.is_flag and not param.count
            if takes_value and not has_value:
                i += 1
                value = args[i] if i < len(args) else None
            else:
                value = word.split("=", 1)[1] if has_value else None
            if isinstance(getattr(param, "type", None), click.Choice) and _literal(value):
                if value not in param.type.choices:
                    return f"{' '.join(path)} {name}: {value!r} is not one of {param.type.choices}"
        elif isinstance(command, click.Group):
            sub = command.get_command(click.Context(command, info_name=path[-1]), word)
            if sub is None:
                return f"{' '.join(path)}: no command {word!r}"
            command, path = sub, [*path, word]
        i += 1
    if isinstance(command, click.Group) and len(path) > 1 and "--help" not in args:
        return f"{' '.join(path)} is a group: name one of its commands"
    return None


def _literal(value: str | None) -> bool:
    """A value written out (not ``$VAR``, ``NAME``-style placeholders or ``a|b`` alternatives)."""
    return bool(value) and not re.search(r"[$<>|\[\]]", value) and not value.isupper()


BASH_COMMANDS = [
    (b, args)
    for b in BLOCKS
    if b.lang in ("bash", "sh", "shell", "console")
    for args in command_lines(b.code)
]


@pytest.mark.parametrize(
    "block,args", BASH_COMMANDS, ids=[f"{b.where}:{' '.join(a[:1])}" for b, a in BASH_COMMANDS]
)
def test_commands_exist(block, args):
    problem = check_command(args)
    assert problem is None, f"{block.where}: `progface {' '.join(args)}`: {problem}"


def test_the_command_checker_catches_mistakes():
    assert check_command(["bench", "--data", "d", "--protocol", "pfsr"]) is None
    assert check_command(["weights", "import", "x.ckpt", "-o", "y.safetensors"]) is None
    assert "no command 'benhc'" in check_command(["benhc", "--data", "d"])
    assert "no option --dta" in check_command(["bench", "--dta", "d"])
    assert "not one of" in check_command(["bench", "--data", "d", "--protocol", "paper"])
    assert "is a group" in check_command(["weights"])
    assert command_lines("OMP_NUM_THREADS=1 x && progface models --json  # list\n") == [
        ["models", "--json"]
    ]
    assert command_lines("torchrun --nproc_per_node=4 -m progface train \\\n  run.toml\n") == [
        ["train", "run.toml"]
    ]


# --- the CLI reference ---------------------------------------------------------------------


def test_cli_reference_shows_every_command():
    """What mkdocs-click renders from the blocks of docs/cli.md has a heading for every command
    path click reaches (mkdocs-click reads a group's ``commands`` dict, which a lazily loading
    group may not fill)."""
    docs = pytest.importorskip("mkdocs_click._docs", reason="the docs extra is not installed")
    from markdown.extensions.toc import slugify

    from progface.cli import cli

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    rendered = []
    for block in re.findall(r"^::: mkdocs-click\n((?:[ ]{4}:.*\n?)+)", text, re.M):
        opts = dict(re.findall(r":(\w+): *(.*)", block))
        module = __import__(opts["module"], fromlist=[opts["command"]])
        rendered += docs.make_command_docs(
            prog_name=opts.get("prog_name") or opts["command"],
            command=getattr(module, opts["command"]),
            depth=int(opts.get("depth", 0)),
            style=opts.get("style", "plain"),
            has_attr_list=True,
        )
    anchors = set(re.findall(r"\{ #([\w-]+) ", "\n".join(rendered)))

    from progface.cli import command_paths

    names = [" ".join(p) for p in command_paths(cli)]
    missing = [name for name in names if slugify(name, "-") not in anchors]
    assert not missing, f"docs/cli.md does not show: {missing}"
