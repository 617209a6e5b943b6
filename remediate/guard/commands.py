"""Whether the model may run a command. Pure: an argv in, a verdict out.

There is no shell. A command is an argv (a JSON array), or a plain string that splits (shlex) into one
simple command: anything a shell would give meaning to (operators, substitutions, redirections,
variables, globs, here-documents, a leading `NAME=value`) is refused, never interpreted. Then:

1. the argv must start with an entry of `guardrails.allowed_commands`, word for word;
2. `blocked_commands` is checked on it (same program, the entry's words in order);
3. per-program option policies refuse what would run another program or write elsewhere: shells and
   wrappers (`sh`, `env`, `xargs`, `sudo` ...), inline code (`python -c`), `git -c`, `--output`, external
   diff and pager options, `find -exec`, pytest's `--junitxml`, `-p`, `--rootdir`, `--basetemp` ...;
4. no argument names a path outside the tree (absolute, or climbing with `..`).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Sequence

from remediate.guard.guardrails import Verdict

# Programs that run another program or code given on their command line: the allowlist cannot see past them.
RUNNERS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "busybox", "env", "sudo", "doas", "su",
                     "xargs", "nohup", "setsid", "timeout", "nice", "ionice", "stdbuf", "time", "command",
                     "exec", "eval", "watch", "chroot", "unshare", "nsenter", "flock", "script", "parallel",
                     "strace", "ltrace", "gdb", "perl", "ruby", "php", "lua", "awk", "gawk", "mawk", "sed",
                     "make", "ssh", "scp", "rsync", "curl", "wget", "nc", "ncat", "socat", "docker", "podman"})
_SHELL_SYNTAX = re.compile(r"[|&;<>()`$*?\[\]{}~\n\r\\]|^#")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHONS = re.compile(r"^(python|python3|python3\.\d+|pypy3?)$")

# program -> options refused (an option matches itself and its `--opt=value` / `-oVALUE` forms).
OPTION_POLICIES: dict[str, tuple[str, ...]] = {
    "git": ("-c", "--config-env", "-C", "--exec-path", "--git-dir", "--work-tree", "--namespace", "--output",
            "-o", "--ext-diff", "--textconv", "-p", "--paginate", "--upload-pack", "--receive-pack", "--exec",
            "-x", "--template", "--separate-git-dir"),
    "find": ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0", "-fprintf", "-fls"),
    "pytest": ("--junitxml", "--junit-xml", "-p", "--rootdir", "--basetemp", "-c", "--config-file", "--confcutdir",
               "-o", "--override-ini", "--resultlog", "--result-log", "--report-log", "--debug", "--log-file",
               "--html", "--cov-report", "--pastebin", "--pyargs", "--import-mode", "--noconftest",
               "--deselect", "-k", "--keyword", "-m", "--markers", "--inifile", "--ignore", "--ignore-glob",
               # -k, -m, --deselect and --ignore leave failing tests out as easily as they select
               "--continue-on-collection-errors", "--runxfail", "--collect-only", "--co"),
    "python": ("-c", "-i"),
    "node": ("-e", "--eval", "-p", "--print", "-r", "--require", "--import", "--loader", "--experimental-loader",
             "--inspect", "--inspect-brk"),
    "npm": ("exec", "x", "explore", "--script-shell", "publish"),
    "npx": ("-c", "--call"),
    "cp": ("-t", "--target-directory"),
    "mv": ("-t", "--target-directory"),
    "tar": ("-C", "--directory", "--to-command", "--use-compress-program", "-I", "--checkpoint-action"),
}
# Git subcommands that run programs, rewrite config or talk to remotes.
GIT_REFUSED = frozenset({"config", "difftool", "mergetool", "filter-branch", "filter-repo", "submodule", "bisect",
                         "rebase", "push", "fetch", "pull", "clone", "remote", "daemon", "instaweb", "send-email",
                         "credential", "hook", "archive", "bundle", "worktree", "gc", "maintenance", "am", "apply",
                         "commit", "merge", "cherry-pick", "revert", "reset", "checkout", "switch", "restore",
                         "update-ref", "update-index", "replace", "notes", "tag", "branch", "stash"})


class CommandRefused(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


def to_argv(command: object) -> list[str]:
    """An argv from the model's `command`: a JSON array of strings, or a plain string that is one simple command."""
    if isinstance(command, str) and command.strip().startswith("["):
        try:
            command = json.loads(command)
        except json.JSONDecodeError as exc:
            raise CommandRefused("command_unparsable", f"not a JSON array: {exc.msg}") from None
    if isinstance(command, list):
        if not command or not all(isinstance(word, str) for word in command):
            raise CommandRefused("command_unparsable", "an argv is a non-empty array of strings")
        argv = list(command)
    elif isinstance(command, str):
        if _SHELL_SYNTAX.search(command):
            raise CommandRefused("command_not_simple", "commands run without a shell: operators, substitutions, "
                                 "redirections, variables and globs are not allowed; send one command as an argv "
                                 "array")
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise CommandRefused("command_unparsable", f"cannot split the command: {exc}") from None
        if not argv:
            raise CommandRefused("command_unparsable", "empty command")
    else:
        raise CommandRefused("command_unparsable", "command must be an argv array or a string")
    if any("\x00" in word for word in argv):
        raise CommandRefused("command_unparsable", "NUL in an argument")
    if _ASSIGNMENT.match(argv[0]):
        raise CommandRefused("command_env_assignment", f"{argv[0].split('=')[0]}=...: the environment is not the "
                             "model's to set")
    return argv


def verdict(command: object, allowed: Sequence[str], blocked: Sequence[str]) -> Verdict:
    """Allowlist, then blocked_commands, then the option policies and paths."""
    try:
        argv = to_argv(command)
        _check(argv, allowed, blocked)
    except CommandRefused as refused:
        return Verdict.refuse(refused.rule, refused.detail, _shown(command))
    return Verdict.allow()


def _shown(command: object) -> str:
    return command if isinstance(command, str) else shlex.join(map(str, command)) if isinstance(command, list) \
        else repr(command)


def _check(argv: list[str], allowed: Sequence[str], blocked: Sequence[str]) -> None:
    shown = shlex.join(argv)[:120]
    if not any(words and argv[: len(words)] == words for words in map(shlex.split, allowed)):
        # A bare allowlisted name does not admit a binary picked by path (`./pytest`, `/tmp/x/pytest`).
        raise CommandRefused("command_not_allowed", f"{shown!r} is not in guardrails.allowed_commands")
    for words in map(shlex.split, blocked):
        if _contains(argv, words):
            raise CommandRefused("blocked_command", f"{shown!r} matches blocked_commands entry {' '.join(words)!r}")
    program = posixpath.basename(argv[0])
    if program in RUNNERS:
        raise CommandRefused("command_runs_programs", f"{program} runs other programs or code; the allowlist "
                             "names the programs themselves")
    options, start = _options_of(argv)
    for option in argv[start:]:
        if option.startswith("@") and "pytest" in options_owner(argv):
            raise CommandRefused("command_option", "pytest @file reads further options from a file")
        name = option.split("=", 1)[0]
        for refused in options:
            # GNU getopt_long takes any unambiguous abbreviation of a long option (`--to-comm=` for --to-command).
            abbreviated = refused.startswith("--") and name.startswith("--") and len(name) >= 4 and \
                refused.startswith(name)
            if option == refused or option.startswith(refused + "=") or abbreviated or (
                    len(refused) == 2 and option.startswith(refused)):
                raise CommandRefused("command_option", f"{program} {refused} runs other programs, writes elsewhere "
                                     "or changes how tests are judged")
    if program == "git":
        sub = next((a for a in argv[1:] if not a.startswith("-")), None)
        if sub in GIT_REFUSED:
            raise CommandRefused("command_option", f"git {sub} changes the repository, its config or remotes, or "
                                 "runs other programs")
    for word in argv[1:]:
        value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
        if value.startswith(("/", "~")) or ".." in value.replace("\\", "/").split("/"):
            raise CommandRefused("path_outside_repo", f"{word!r} names a path outside the repository")


def options_owner(argv: list[str]) -> str:
    """The program whose options the argv passes: `python -m pytest` passes pytest's."""
    program = posixpath.basename(argv[0])
    return argv[2] if _PYTHONS.match(program) and len(argv) > 2 and argv[1] == "-m" else program


def _options_of(argv: list[str]) -> tuple[tuple[str, ...], int]:
    """The refused options for this argv, and where its options start (`python -m pytest`: after the module)."""
    program = posixpath.basename(argv[0])
    if _PYTHONS.match(program):
        if len(argv) > 2 and argv[1] == "-m":
            return OPTION_POLICIES.get(argv[2], ()), 3
        return (*OPTION_POLICIES["python"], "-m"), 1
    return OPTION_POLICIES.get(program, ()), 1


def _contains(argv: Sequence[str], words: Sequence[str]) -> bool:
    """`kubectl apply` blocks `/usr/bin/kubectl --context prod apply -f x`: same program, words in order."""
    if not words or posixpath.basename(argv[0]) != posixpath.basename(words[0]):
        return False
    position = 1
    for word in words[1:]:
        try:
            position = list(argv).index(word, position) + 1
        except ValueError:
            return False
    return True
