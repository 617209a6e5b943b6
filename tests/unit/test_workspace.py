import os
from pathlib import Path

import pytest

from remediate.guard.guardrails import PathRefused, WritePolicy
from remediate.guard.workspace import PatchError, Workspace


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "svc.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "production.yaml").write_text("a: 1\n")
    return tmp_path


def _ws(repo: Path, **kw) -> Workspace:
    return Workspace(repo, WritePolicy(("config/production.*",), scope_files=None, **kw))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_allowed_write_lands_and_refused_write_changes_nothing(repo):
    ws = _ws(repo)
    assert ws.propose_content("app/new.py", "x = 1\n").allowed
    assert (repo / "app" / "new.py").read_text() == "x = 1\n"
    before = _snapshot(repo)
    verdict = ws.propose_content("config/production.yaml", "a: 2\n")
    assert verdict.rule == "protected_file"
    assert _snapshot(repo) == before
    assert ws.changes.files_touched == {"app/new.py"}


def test_a_refused_cumulative_change_keeps_the_earlier_accepted_one(repo):
    ws = _ws(repo, max_files_modified=1)
    assert ws.propose_content("app/svc.py", "one\n").allowed
    before = _snapshot(repo)
    assert ws.propose_content("app/other.py", "two\n").rule == "max_files_modified"
    assert _snapshot(repo) == before and ws.changes.files_touched == {"app/svc.py"}


def test_symlinks_on_the_path_are_refused(repo, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    os.symlink(outside, repo / "escape")
    os.symlink(repo / "config" / "production.yaml", repo / "app" / "innocent.yaml")
    ws = _ws(repo)
    with pytest.raises(PathRefused) as err:
        ws.resolve("escape/x.py")
    assert err.value.rule == "symlink"
    with pytest.raises(PathRefused):
        ws.resolve("app/innocent.yaml")
    assert list(outside.iterdir()) == []


def test_apply_patch_modifies_adds_deletes_and_renames(repo):
    (repo / "app" / "old.py").write_text("gone\n")
    (repo / "app" / "move.py").write_text("same\n")
    patch = """--- a/app/svc.py
+++ b/app/svc.py
@@ -4,4 +4,4 @@


 def g():
-    return 2
+    return 3
--- /dev/null
+++ b/tests/test_g.py
@@ -0,0 +1,2 @@
+def test_g():
+    assert True
--- a/app/old.py
+++ /dev/null
@@ -1 +0,0 @@
-gone
"""
    ws = _ws(repo, max_files_modified=5)
    assert ws.propose_patch(patch).allowed
    assert (repo / "app" / "svc.py").read_text().endswith("return 3\n")
    assert (repo / "tests" / "test_g.py").read_text() == "def test_g():\n    assert True\n"
    assert not (repo / "app" / "old.py").exists()
    statuses = {c.path: c.status for c in ws.changes}
    assert statuses == {"app/svc.py": "modified", "tests/test_g.py": "added", "app/old.py": "deleted"}
    rename = ("diff --git a/app/move.py b/app/moved.py\nsimilarity index 100%\n"
              "rename from app/move.py\nrename to app/moved.py\n")
    assert ws.propose_patch(rename).allowed
    assert (repo / "app" / "moved.py").read_text() == "same\n" and not (repo / "app" / "move.py").exists()


def test_patch_touching_a_protected_file_changes_nothing(repo):
    patch = """--- a/app/svc.py
+++ b/app/svc.py
@@ -1,2 +1,2 @@
 def f():
-    return 1
+    return 9
--- a/config/production.yaml
+++ b/config/production.yaml
@@ -1 +1 @@
-a: 1
+a: 2
"""
    before = _snapshot(repo)
    ws = _ws(repo)
    assert ws.propose_patch(patch).rule == "protected_file"
    assert _snapshot(repo) == before


BAD_PATCHES = [
    "not a patch",
    # The @@ header covers one line of a body that shows three.
    "--- a/app/svc.py\n+++ b/app/svc.py\n@@ -1,1 +1,1 @@\n def f():\n-    return 1\n+    return 5\n",
    # Context that is not in the file.
    "--- a/app/svc.py\n+++ b/app/svc.py\n@@ -1,1 +1,1 @@\n-nope\n+x\n",
    "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
]


@pytest.mark.parametrize("patch", BAD_PATCHES)
def test_bad_patches_are_reported(repo, patch):
    ws = _ws(repo)
    with pytest.raises((PatchError, PathRefused)):
        ws.propose_patch(patch)
    assert len(ws.changes) == 0
