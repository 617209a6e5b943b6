"""What a shell command string would run, and whether it may. Pure: a string in, a verdict out.

The string is parsed with bashlex; every simple command it would start (in lists, pipelines,
subshells, `$(...)` and backticks, and inside `sh -c '...'` recursively) is unwrapped from
`sudo`, `env`, `timeout`, `xargs`, `nice` and friends, then checked against the allowlist first and
`blocked_commands` second. What cannot be analysed with certainty is refused.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

import bashlex

from remediate.guard.guardrails import Verdict

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"})
UNANALYSABLE = frozenset({"eval", "source", ".", "exec", "trap", "alias", "function", "coproc", "fc", "builtin"})
# Wrapper -> options that take a separate argument. What follows the options is the real command.
WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "-S", "--unset", "--chdir"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p", "-t"}),
    "nohup": frozenset(),
    "time": frozenset({"-f", "-o"}),
    "command": frozenset(),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "setsid": frozenset(),
    "xargs": frozenset({"-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter",
                        "--max-args", "--max-procs", "--max-chars", "--replace"}),
}
_NULL_SINKS = frozenset({"/dev/null"})


class CommandRefused(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class Analysis:
    commands: tuple[tuple[str, ...], ...]  # every argv the string would run, unwrapped
    plain: bool  # one simple command, no shell syntax: it can run without a shell


def analyse(command: str, depth: int = 0) -> Analysis:
    if depth > 4:
        raise CommandRefused("command_unanalysable", "shells nested too deep")
    if not command.strip():
        raise CommandRefused("command_unparsable", "empty command")
    try:
        trees = bashlex.parse(command)
    except Exception as exc:  # bashlex raises several types for what it cannot parse
        raise CommandRefused("command_unparsable", f"cannot parse the command: {exc}") from None
    walker = _Walker(depth)
    for tree in trees:
        walker.visit(tree)
    plain = len(walker.commands) == 1 and not walker.syntax and len(trees) == 1
    return Analysis(tuple(walker.commands), plain)


class _Walker:
    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.commands: list[tuple[str, ...]] = []
        self.syntax = False  # anything beyond one plain argv

    def visit(self, node: bashlex.ast.node) -> None:
        kind = node.kind
        if kind == "list" or kind == "pipeline":
            self.syntax = True
            for part in node.parts:
                if part.kind not in ("operator", "pipe"):
                    self.visit(part)
        elif kind == "compound":
            self.syntax = True
            for part in node.list:
                if part.kind == "reservedword" and part.word not in ("(", ")", "{", "}"):
                    raise CommandRefused("command_unanalysable", f"control flow ({part.word}) is not analysed")
                if part.kind != "reservedword":
                    self.visit(part)
        elif kind == "command":
            self.command(node)
        elif kind in ("if", "for", "while", "until", "case", "function"):
            raise CommandRefused("command_unanalysable", f"control flow ({kind}) is not analysed")
        else:
            raise CommandRefused("command_unanalysable", f"shell construct {kind!r} is not analysed")

    def command(self, node: bashlex.ast.node) -> None:
        argv: list[str] = []
        for index, part in enumerate(node.parts):
            if part.kind == "assignment":
                self.syntax = True
                self.substitutions(part)
            elif part.kind == "word":
                if not argv:
                    _check_command_word(part)
                self.substitutions(part)
                argv.append(part.word)
            elif part.kind == "redirect":
                self.syntax = True
                _check_redirect(part)
            else:
                raise CommandRefused("command_unanalysable", f"shell construct {part.kind!r} at word {index}")
        if argv:
            self.simple(argv)

    def substitutions(self, word: bashlex.ast.node) -> None:
        for part in getattr(word, "parts", []) or []:
            if part.kind in ("commandsubstitution", "processsubstitution"):
                self.syntax = True
                self.visit(part.command)
            elif part.kind == "parameter":
                self.syntax = True

    def simple(self, argv: list[str]) -> None:
        argv = unwrap(argv)
        name = posixpath.basename(argv[0])
        if name in UNANALYSABLE:
            raise CommandRefused("command_unanalysable", f"{argv[0]} runs code that cannot be analysed")
        if name in SHELLS:
            script = _shell_script(argv)
            self.syntax = True
            self.commands.extend(analyse(script, self.depth + 1).commands)
            return
        self.commands.append(tuple(argv))


def unwrap(argv: list[str]) -> list[str]:
    """Strip wrappers and their options (`sudo -u x`, `env A=1`, `timeout 5`, `xargs -n1`)."""
    while argv:
        name = posixpath.basename(argv[0])
        if name not in WRAPPERS:
            return argv
        takes_argument = WRAPPERS[name]
        rest = argv[1:]
        while rest and (rest[0].startswith("-") or (name == "env" and "=" in rest[0])):
            option = rest.pop(0)
            if option == "--":
                break
            if option in takes_argument and rest:
                rest.pop(0)
            if name == "nice" and option[1:].isdigit():
                continue
        if name == "timeout" and rest:
            rest.pop(0)  # the duration
        if not rest:
            return argv  # the wrapper alone (`env` prints the environment): judged as itself
        argv = rest
    return argv


def _shell_script(argv: list[str]) -> str:
    for i, word in enumerate(argv[1:], 1):
        if word == "-c" or (word.startswith("-") and not word.startswith("--") and "c" in word[1:]):
            if i + 1 < len(argv):
                return argv[i + 1]
            break
    raise CommandRefused("command_unanalysable", f"{argv[0]} without -c runs a script or stdin that cannot be analysed")


def _check_command_word(word: bashlex.ast.node) -> None:
    for part in getattr(word, "parts", []) or []:
        if part.kind in ("parameter", "commandsubstitution", "processsubstitution"):
            raise CommandRefused("command_unanalysable", "a variable or substitution in command position")
    if any(c in word.word for c in "*?[]{}~$`"):
        raise CommandRefused("command_unanalysable", f"{word.word!r} in command position is not a plain name")


def _check_redirect(node: bashlex.ast.node) -> None:
    kind = node.type
    if kind in ("<<", "<<-", "<<<"):
        raise CommandRefused("command_unanalysable", "here-documents and here-strings are not analysed")
    target = node.output
    if isinstance(target, int) or (kind in (">&", "<&") and getattr(target, "word", "").isdigit()):
        return  # 2>&1: duplicating a descriptor writes no file
    word = getattr(target, "word", "")
    if kind == "<":
        return  # reading a file is not a write
    if word in _NULL_SINKS:
        return
    raise CommandRefused("command_redirect", f"redirecting output to {word!r} would write a file past the guardrails")


def verdict(command: str, allowed: list[str], blocked: list[str]) -> Verdict:
    """Allowlist first, blocked_commands second, for every command the string would run."""
    try:
        analysis = analyse(command)
    except CommandRefused as refused:
        return Verdict.refuse(refused.rule, refused.detail, command)
    allowed_words = [shlex.split(entry) for entry in allowed]
    blocked_words = [shlex.split(entry) for entry in blocked]
    for argv in analysis.commands:
        shown = " ".join(argv)[:120]
        if not any(_starts_with(argv, words) for words in allowed_words):
            return Verdict.refuse("command_not_allowed", f"{shown!r} is not in guardrails.allowed_commands", command)
        for words in blocked_words:
            if _contains(argv, words):
                return Verdict.refuse("blocked_command", f"{shown!r} matches blocked_commands entry "
                                      f"{' '.join(words)!r}", command)
    return Verdict.allow()


def _starts_with(argv: tuple[str, ...], words: list[str]) -> bool:
    # A bare allowlisted name does not admit a binary picked by path (`./pytest`, `/tmp/x/pytest`).
    return bool(words) and list(argv[: len(words)]) == words


def _contains(argv: tuple[str, ...], words: list[str]) -> bool:
    """`kubectl apply` blocks `/usr/bin/kubectl --context prod apply -f x`: same program, words in order."""
    if not words or posixpath.basename(argv[0]) != posixpath.basename(words[0]):
        return False
    position = 1
    for word in words[1:]:
        try:
            position = argv.index(word, position) + 1
        except ValueError:
            return False
    return True
