"""Per-function test selection from a coverage map: what it vouches for, and where it steps back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from remediate.verify.coverage_map import CoverageMap, build_map, changed_units, digest, node_id, units
from remediate.verify.selection import select_with_coverage

BEFORE = '''import math

LIMIT = 10


def area(r):
    return math.pi * r * r


class Shape:
    sides = 0

    def grow(self, by):
        def helper(x):
            return x + by
        return helper(self.sides)

    @property
    def name(self):
        return "shape"
'''


def test_units_are_functions_and_methods_with_their_body_spans():
    assert units(BEFORE) == {"area": (7, 7), "Shape.grow": (14, 16), "Shape.name": (20, 20)}
    assert units("def broken(:\n") is None


def test_only_body_changes_are_function_changes():
    assert changed_units(BEFORE, BEFORE.replace("math.pi * r * r", "math.pi * r ** 2")) == {"area"}
    assert changed_units(BEFORE, BEFORE.replace("return x + by", "return x - by")) == {"Shape.grow"}
    assert changed_units(BEFORE, BEFORE) == set()
    # What runs at import time is not a function change: the map cannot vouch for it.
    for before, after in [("LIMIT = 10", "LIMIT = 11"), ("def area(r):", "def area(r, scale=1):"),
                          ("    @property\n", ""), ("    sides = 0", "    sides = 3"),
                          ("import math\n", "import math\nimport os\n")]:
        assert changed_units(BEFORE, BEFORE.replace(before, after)) is None, before
    assert changed_units(BEFORE, BEFORE + "\n\ndef new_helper():\n    return 1\n") is None


def test_pytest_cov_context_labels_become_node_ids():
    assert node_id("tests/test_a.py::TestX::test_y[1-2]|run") == "tests/test_a.py::TestX::test_y[1-2]"
    assert node_id("tests/test_a.py::test_z|setup") == "tests/test_a.py::test_z"
    assert node_id("") is None


def _map(files: dict) -> CoverageMap:
    return CoverageMap("abc123", files)


def test_the_map_narrows_only_what_it_recorded_on_the_same_source():
    cmap = _map({"geo.py": {"sha1": digest(BEFORE), "functions": {
        "area": ["tests/test_geo.py::test_area"], "Shape.grow": ["tests/test_shape.py::test_grow"],
        "<module>": ["tests/test_geo.py::test_area"]}}})
    after = BEFORE.replace("math.pi * r * r", "math.pi * r ** 2")
    tests, why = cmap.tests_for("geo.py", BEFORE, after)
    assert tests == {"tests/test_geo.py::test_area"} and "ran area" in why
    # Edited since the map was recorded, unknown to the map, or beyond function bodies: not narrowed.
    assert cmap.tests_for("geo.py", BEFORE + "# edited\n", after) is None
    assert cmap.tests_for("other.py", BEFORE, after) is None
    assert cmap.tests_for("geo.py", BEFORE, BEFORE.replace("LIMIT = 10", "LIMIT = 1")) is None
    # A function no test ran: no test can notice its body changed.
    assert cmap.tests_for("geo.py", BEFORE, BEFORE.replace('"shape"', '"Shape"'))[0] == set()
    # One that also ran at import time: a fault there breaks whole modules, so the map steps back.
    imported = _map({"geo.py": {**cmap.files["geo.py"], "outside_tests": ["area"]}})
    assert imported.tests_for("geo.py", BEFORE, after) is None


def test_selection_mixes_single_tests_and_import_graph_files():
    util = "def double(x):\n    return 2 * x\n"
    sources = {"geo.py": BEFORE, "util.py": util, "tests/test_geo.py": "import geo\n",
               "tests/test_util.py": "import util\n", "tests/test_shape.py": "import geo\n"}
    cmap = _map({"geo.py": {"sha1": digest(BEFORE), "functions": {
        "area": ["tests/test_geo.py::test_area", "tests/test_util.py::test_via_geo"]}}})
    after = {**sources, "geo.py": BEFORE.replace("r * r", "r ** 2"), "util.py": "X = 1\n" + util}
    selection = select_with_coverage(cmap, sources, after, ["geo.py", "util.py"])
    # util.py changed at module level: its importers run whole, which covers test_util's single test.
    assert selection.tests == ("tests/test_geo.py::test_area", "tests/test_util.py")
    assert "ran area" in selection.reason["tests/test_geo.py::test_area"]
    assert selection.reason["tests/test_util.py"] == "imports util.py"
    # Without a map, the import graph alone decides.
    assert select_with_coverage(None, sources, after, ["geo.py"]).tests == ("tests/test_geo.py", "tests/test_shape.py")


def test_a_map_recorded_with_pytest_cov_maps_functions_to_the_tests_that_ran_them(tmp_path):
    (tmp_path / "geo.py").write_text(BEFORE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_geo.py").write_text(
        "import geo\n\n\ndef test_area():\n    assert geo.area(1) > 3\n\n\n"
        "def test_grow():\n    assert geo.Shape().grow(2) == 2\n")
    (tmp_path / "tests" / "test_name.py").write_text("import geo\n\n\ndef test_name():\n"
                                                     "    assert geo.Shape().name == 'shape'\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=.",
                           "--cov-context=test", "tests"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    built = build_map(tmp_path / ".coverage", tmp_path, "f00d")
    entry = built["files"]["geo.py"]
    assert entry["sha1"] == digest(BEFORE) and built["commit"] == "f00d"
    assert entry["functions"]["area"] == ["tests/test_geo.py::test_area"]
    assert entry["functions"]["Shape.grow"] == ["tests/test_geo.py::test_grow"]
    assert entry["functions"]["Shape.name"] == ["tests/test_name.py::test_name"]
    assert entry["outside_tests"] == ["<module>"]  # the module body ran while pytest imported it
    # Recorded in one checkout, read in another (the runner's path, then the action's /github/workspace).
    moved = tmp_path / "elsewhere" / "workspace"
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns("elsewhere"))
    assert build_map(tmp_path / ".coverage", moved, "f00d")["files"]["geo.py"] == entry
    # The CLI writes the same map, and refuses data without per-test contexts.
    out = tmp_path / "map.json"
    cli = subprocess.run([sys.executable, "-m", "remediate", "coverage-map", "--data", str(tmp_path / ".coverage"),
                          "--repo", str(tmp_path), "--out", str(out)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert cli.returncode == 0, cli.stderr
    assert json.loads(out.read_text())["files"]["geo.py"]["functions"] == entry["functions"]
    assert CoverageMap.load(out).tests_for("geo.py", BEFORE, BEFORE.replace("x + by", "x * by"))[0] == {
        "tests/test_geo.py::test_grow"}


def test_the_cli_refuses_coverage_without_per_test_contexts(tmp_path):
    (tmp_path / "geo.py").write_text(BEFORE)
    (tmp_path / "test_geo.py").write_text("import geo\n\n\ndef test_area():\n    assert geo.area(1) > 3\n")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=.", "test_geo.py"],
                   cwd=tmp_path, capture_output=True, check=True)
    cli = subprocess.run([sys.executable, "-m", "remediate", "coverage-map", "--data", str(tmp_path / ".coverage"),
                          "--repo", str(tmp_path), "--out", str(tmp_path / "map.json")], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[2])
    assert cli.returncode == 1 and "no per-test contexts (record with --cov-context=test)" in cli.stderr
    assert not (tmp_path / "map.json").exists()


def test_a_function_called_at_import_time_is_marked_and_not_narrowed(tmp_path):
    source = BEFORE + "\nUNIT_AREA = area(1)\n"
    (tmp_path / "geo.py").write_text(source)
    (tmp_path / "test_geo.py").write_text("import geo\n\n\ndef test_grow():\n    assert geo.Shape().grow(2) == 2\n")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=.", "--cov-context=test",
                    "test_geo.py"], cwd=tmp_path, capture_output=True, check=True)
    built = build_map(tmp_path / ".coverage", tmp_path, None)
    assert "area" in built["files"]["geo.py"]["outside_tests"]
    cmap = CoverageMap(None, built["files"])
    assert cmap.tests_for("geo.py", source, source.replace("r * r", "r ** 2")) is None
    assert cmap.tests_for("geo.py", source, source.replace("x + by", "x * by"))[0] == {"test_geo.py::test_grow"}
