import pytest

from remediate.verify.selection import imported_modules, module_names, select_affected_tests

SOURCES = {
    "app/__init__.py": "",
    "app/users/__init__.py": "",
    "app/users/store.py": "class UserStore: ...\n",
    "app/users/service.py": "from app.users.store import UserStore\n",
    "app/users/api.py": "from .service import UserService\n",
    "app/billing.py": "import json\n",
    "tests/test_store.py": "from app.users import store\n",
    "tests/test_service.py": "from app.users.service import UserService\n",
    "tests/test_api.py": "import app.users.api\n",
    "tests/test_billing.py": "from app import billing\n",
    "tests/web/conftest.py": "from app.users.service import UserService\n",
    "tests/web/test_pages.py": "def test_page(): ...\n",
    "src/pkg/core.py": "X = 1\n",
    "tests/test_core.py": "from pkg.core import X\n",
}


def test_module_names_cover_plain_and_src_layouts():
    assert {"app.users.service", "users.service", "service"} <= module_names("app/users/service.py")
    assert "pkg.core" in module_names("src/pkg/core.py")
    assert "app.users" in module_names("app/users/__init__.py")


def test_relative_and_from_imports_resolve():
    assert "app.users.service" in imported_modules("app/users/api.py", SOURCES["app/users/api.py"])
    assert "app.users.store" in imported_modules("tests/test_store.py", SOURCES["tests/test_store.py"])


def test_transitive_importers_and_conftest_chains():
    selection = select_affected_tests(SOURCES, ["app/users/store.py"])
    assert selection.tests == ("tests/test_api.py", "tests/test_service.py", "tests/test_store.py",
                               "tests/web/test_pages.py")
    assert selection.reason["tests/test_api.py"] == "imports app/users/store.py"
    assert selection.reason["tests/web/test_pages.py"].startswith("conftest.py in tests/web")


def test_unrelated_change_selects_only_its_tests():
    assert select_affected_tests(SOURCES, ["app/billing.py"]).tests == ("tests/test_billing.py",)
    assert select_affected_tests(SOURCES, ["src/pkg/core.py"]).tests == ("tests/test_core.py",)


def test_changed_and_new_test_files_are_selected():
    selection = select_affected_tests(SOURCES, ["tests/test_new.py", "tests/test_billing.py"])
    assert selection.tests == ("tests/test_billing.py", "tests/test_new.py")
    assert selection.reason["tests/test_new.py"] == "changed"


def test_nothing_selected_for_non_python_change():
    assert select_affected_tests(SOURCES, ["docs/index.md"]).tests == ()


def test_the_test_map_covers_what_imports_cannot_see():
    files = [*SOURCES, "app/templates/profile.html", "tests/web/test_render.py", "tests/web/test_forms.py"]
    test_map = {"app/templates/**": ["tests/web/test_*.py"], "config/*.yaml": ["tests/test_config.py"]}
    selection = select_affected_tests(SOURCES, ["app/templates/profile.html"], test_map, files)
    assert selection.tests == ("tests/web/test_forms.py", "tests/web/test_pages.py", "tests/web/test_render.py")
    reason = selection.reason["tests/web/test_render.py"]
    assert reason == "tests.map: app/templates/** matches app/templates/profile.html"
    assert select_affected_tests(SOURCES, ["config/prod.yaml"], test_map, files).tests == ("tests/test_config.py",)


def test_a_test_that_runs_a_changed_file_or_module_in_a_subprocess_is_selected():
    from remediate.verify.selection import select_affected_tests

    sources = {
        "tabulate/__init__.py": "def tabulate(rows):\n    return str(rows)\n",
        "test/test_cli.py": "import subprocess, sys\n\n\ndef test_cli():\n"
                            "    subprocess.run([sys.executable, 'tabulate/__init__.py', '--help'], check=True)\n",
        "test/test_module.py": "import subprocess, sys\n\n\ndef test_m():\n"
                               "    subprocess.run([sys.executable, '-m', 'tabulate'], check=True)\n",
        "test/test_shell.py": "import os\n\n\ndef test_shell():\n    os.system('python -m tabulate -h')\n",
        "test/test_other.py": "def test_other():\n    assert 'tabulated' != 'x'\n",
    }
    selection = select_affected_tests(sources, ["tabulate/__init__.py"])
    assert set(selection.tests) == {"test/test_cli.py", "test/test_module.py", "test/test_shell.py"}
    assert selection.reason["test/test_cli.py"].startswith("runs tabulate/__init__.py")


@pytest.mark.parametrize(("files", "expected"), [
    ({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'}, ("tests",)),
    ({"pytest.ini": "[pytest]\ntestpaths = tests integration\n", "pyproject.toml": "[tool.other]\n"},
     ("tests", "integration")),
    ({"setup.cfg": "[tool:pytest]\ntestpaths =\n    tests\n"}, ("tests",)),
    ({"tox.ini": "[tox]\nenvlist = py311\n"}, None),
    ({"pyproject.toml": "not toml ["}, None),
    ({}, None),
])
def test_pytest_s_own_testpaths_are_read_as_pytest_would(files, expected):
    from remediate.verify.selection import pytest_testpaths

    assert pytest_testpaths(files.get) == expected


def test_tests_outside_testpaths_are_left_out_since_pytest_would_run_them_if_named():
    from remediate.verify.selection import collected

    inside, outside = collected(["tests/test_a.py", "benchmarks/test_speed.py", "tests/unit/test_b.py::test_x"],
                                ("tests",))
    assert inside == ["tests/test_a.py", "tests/unit/test_b.py::test_x"] and outside == ["benchmarks/test_speed.py"]
    assert collected(["benchmarks/test_speed.py"], None) == (["benchmarks/test_speed.py"], [])


MORE = "def chunked(xs, n):\n    return [xs[i:i + n] for i in range(0, len(xs), n)]\n\n\n" \
       "def first(xs):\n    return xs[0]\n"
REEXPORTED = {  # more-itertools' shape: a package that re-exports its modules with `*`
    "more_itertools/__init__.py": '"""More routines."""\nfrom .more import *  # noqa\nfrom .recipes import *  # noqa\n'
                                  "__all__ = ['chunked', 'first', 'take']\n",
    "more_itertools/more.py": MORE,
    "more_itertools/recipes.py": "from .more import first\n\n\ndef take(xs):\n    return first(xs)\n",
    "tests/test_chunked.py": "from more_itertools import chunked\n\n\ndef test_c():\n    assert chunked([1], 1)\n",
    "tests/test_first.py": "import more_itertools as mi\n\n\ndef test_f():\n    assert mi.first([1]) == 1\n",
    "tests/test_take.py": "from more_itertools import take\n\n\ndef test_t():\n    assert take([1]) == 1\n",
    "tests/test_alias.py": "from more_itertools.more import chunked as batches\n\n\ndef test_b():\n"
                           "    assert batches([1], 1)\n",
    "tests/test_escapes.py": "import more_itertools\n\n\ndef test_e():\n    assert vars(more_itertools)\n",
}


def test_a_change_to_one_function_of_a_re_exported_module_selects_the_tests_that_use_that_name():
    after = {**REEXPORTED, "more_itertools/more.py": MORE.replace("range(0, len(xs), n)", "range(0, len(xs), n or 1)")}
    selection = select_affected_tests(after, ["more_itertools/more.py"], before=REEXPORTED)
    # chunked changed: its users, by name through the package, by alias, and a test the module escapes into.
    assert selection.tests == ("tests/test_alias.py", "tests/test_chunked.py", "tests/test_escapes.py")


def test_a_change_to_a_function_others_call_reaches_their_tests_too():
    after = {**REEXPORTED, "more_itertools/more.py": MORE.replace("return xs[0]", "return next(iter(xs))")}
    selection = select_affected_tests(after, ["more_itertools/more.py"], before=REEXPORTED)
    # first changed: its users, and take's (recipes.py calls first: all of recipes counts as changed).
    assert selection.tests == ("tests/test_escapes.py", "tests/test_first.py", "tests/test_take.py")


def test_module_level_changes_and_no_before_select_every_importer_as_before():
    after = {**REEXPORTED, "more_itertools/more.py": "import os\n" + MORE}
    everyone = {p for p in REEXPORTED if p.startswith("tests/")}
    assert set(select_affected_tests(after, ["more_itertools/more.py"], before=REEXPORTED).tests) == everyone
    assert set(select_affected_tests(after, ["more_itertools/more.py"]).tests) == everyone


NODES = {
    "pkg/__init__.py": "from .more import *  # noqa\n__all__ = ['first', 'seekable', 'last']\n",
    "pkg/more.py": "def first(xs):\n    return xs[0]\n\n\ndef seekable(xs):\n    return iter(xs)\n\n\n"
                   "def last(xs):\n    return first(xs[::-1])\n",
    "tests/test_more.py": '''import unittest

import pytest

import pkg as mi


@pytest.fixture(name="items")
def _items_fixture():
    return mi.seekable([1, 2])


def _helper():
    return mi.last([1])


class SeekableTest(unittest.TestCase):
    def test_seek(self):
        assert mi.seekable([1])


class TestFirst:
    def test_first(self):
        assert mi.first([1]) == 1


def test_with_fixture(items):
    assert next(items) == 1


def test_through_helper():
    assert _helper() == 1


@pytest.mark.parametrize("value", [mi.first])
def test_parametrized(value):
    assert value


def test_unrelated():
    assert mi.last([2]) == 2
''',
    "tests/test_autouse.py": "import pytest\n\nfrom pkg import seekable\n\n\n@pytest.fixture(autouse=True)\n"
                             "def setup():\n    seekable([])\n\n\ndef test_a():\n    pass\n",
    "tests/test_module_level.py": "from pkg import seekable\n\nCASES = list(seekable([1]))\n\n\n"
                                  "def test_cases():\n    assert CASES\n",
}


def _seekable_changed() -> dict[str, str]:
    return {**NODES, "pkg/more.py": NODES["pkg/more.py"].replace("return iter(xs)", "return iter(list(xs))")}


def test_with_nodes_a_change_to_one_function_runs_only_the_tests_that_use_it():
    selection = select_affected_tests(_seekable_changed(), ["pkg/more.py"], before=NODES, nodes=True)
    # The unittest class and the test whose fixture (asked for by its alias) uses seekable; the files that
    # use it at module level or in an autouse fixture run whole.
    assert selection.tests == ("tests/test_autouse.py", "tests/test_module_level.py",
                               "tests/test_more.py::SeekableTest", "tests/test_more.py::test_with_fixture")
    assert selection.reason["tests/test_more.py::SeekableTest"] == "uses mi.seekable of pkg/more.py"
    # Without nodes (another runner, or pytest with its own naming rules): files, as before.
    files = select_affected_tests(_seekable_changed(), ["pkg/more.py"], before=NODES)
    assert files.tests == ("tests/test_autouse.py", "tests/test_module_level.py", "tests/test_more.py")


def test_with_nodes_callers_in_the_package_and_helpers_in_the_test_carry_the_change():
    after = {**NODES, "pkg/more.py": NODES["pkg/more.py"].replace("return xs[0]", "return next(iter(xs))")}
    selection = select_affected_tests(after, ["pkg/more.py"], before=NODES, nodes=True)
    # first changed; last calls it, _helper calls last, a parametrize decorator names first.
    assert selection.tests == ("tests/test_more.py::TestFirst", "tests/test_more.py::test_parametrized",
                               "tests/test_more.py::test_through_helper", "tests/test_more.py::test_unrelated")


def test_with_nodes_the_fix_s_own_test_file_runs_its_new_tests_and_the_users_of_the_change():
    tests = NODES["tests/test_more.py"] + "\n\ndef test_regression():\n    assert list(mi.seekable((1,))) == [1]\n"
    after = {**_seekable_changed(), "tests/test_more.py": tests}
    selection = select_affected_tests(after, ["pkg/more.py", "tests/test_more.py"], before=NODES, nodes=True)
    picked = [t for t in selection.tests if t.startswith("tests/test_more.py")]
    assert picked == ["tests/test_more.py::SeekableTest", "tests/test_more.py::test_regression",
                      "tests/test_more.py::test_with_fixture"]
    assert selection.reason["tests/test_more.py::test_regression"] == "changed"
    # A change outside its tests (an import) makes the file run whole.
    edited = {**after, "tests/test_more.py": "import os\n" + tests}
    assert "tests/test_more.py" in select_affected_tests(edited, ["pkg/more.py", "tests/test_more.py"],
                                                         before=NODES, nodes=True).tests


CONFTESTS = {
    "tests/conftest.py": "import pytest\nfrom pkg import seekable\n\n\n@pytest.fixture\n"
                         "def stream():\n    return seekable([])\n\n\n@pytest.fixture\ndef plain():\n    return 1\n",
    "tests/sub/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef big(stream):\n    return stream\n",
    "tests/sub/test_sub.py": "def test_big(big):\n    assert big is not None\n\n\n"
                             "def test_other(plain):\n    assert plain\n",
    "tests/test_streams.py": "def test_stream(stream):\n    assert stream\n\n\ndef test_plain(plain):\n"
                             "    assert plain\n",
}


def test_with_nodes_fixtures_of_a_conftest_that_use_the_change_select_the_tests_that_ask_for_them():
    before = {**NODES, **CONFTESTS}
    after = {**_seekable_changed(), **CONFTESTS}
    selection = select_affected_tests(after, ["pkg/more.py"], before=before, nodes=True)
    # stream uses seekable; tests/sub's big asks for stream; the tests that ask for neither do not run.
    assert [t for t in selection.tests if not t.startswith("tests/test_more.py")] == [
        "tests/sub/test_sub.py::test_big", "tests/test_autouse.py", "tests/test_module_level.py",
        "tests/test_streams.py::test_stream"]
    assert selection.reason["tests/sub/test_sub.py::test_big"] == "uses big of a conftest.py"
    # An autouse fixture (or a hook) that uses the change reaches every test below it: whole files.
    autouse = {**CONFTESTS, "tests/conftest.py": CONFTESTS["tests/conftest.py"].replace(
        "@pytest.fixture\ndef stream", "@pytest.fixture(autouse=True)\ndef stream")}
    whole = select_affected_tests({**_seekable_changed(), **autouse}, ["pkg/more.py"], before={**NODES, **autouse},
                                  nodes=True)
    assert "tests/sub/test_sub.py" in whole.tests and "tests/test_streams.py" in whole.tests
    assert whole.reason["tests/sub/test_sub.py"] == "conftest.py in tests depends on the change"


def test_pytest_s_own_naming_rules_turn_single_tests_off():
    from remediate.verify.selection import pytest_collects_by_default

    def reader(files: dict[str, str]):
        return files.get

    assert pytest_collects_by_default(reader({}))
    assert pytest_collects_by_default(reader({"pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['t']\n"}))
    assert not pytest_collects_by_default(reader({"setup.cfg": "[tool:pytest]\npython_classes = *Tests\n"}))
    assert not pytest_collects_by_default(reader({"pytest.ini": "[pytest]\npython_functions = check_*\n"}))


MOD = {"pkg/__init__.py": "", "tests/__init__.py": "",
       "pkg/mod.py": "def func():\n    return 1\n\n\ndef other():\n    return 2\n"}
REACHES_EVERY_TEST = {  # found by an attack on single-test selection: each reaches tests that never name func
    "pytestmark": "import pytest\nfrom pkg.mod import func\n\npytestmark = pytest.mark.usefixtures('seeded')\n"
                  "STATE = {}\n\n\n@pytest.fixture\ndef seeded():\n    STATE['v'] = func()\n\n\n"
                  "def test_state():\n    assert STATE['v'] == 1\n\n\ndef test_direct():\n    assert func() == 1\n",
    "setup_module": "from pkg.mod import func\n\nDATA = None\n\n\ndef setup_module(module):\n    global DATA\n"
                    "    DATA = func()\n\n\ndef test_data():\n    assert DATA == 1\n\n\n"
                    "def test_direct():\n    assert func() == 1\n",
    "imported test": "from pkg.mod import func\nfrom tests.checks import test_contract\n\n\n"
                     "def test_direct():\n    assert func() == 1\n",
}


@pytest.mark.parametrize("shape", sorted(REACHES_EVERY_TEST))
def test_with_nodes_module_set_up_and_imported_tests_keep_the_file_whole(shape):
    files = {**MOD, "tests/checks.py": "from pkg.mod import func\n\n\ndef test_contract():\n    assert func()\n",
             "tests/test_x.py": REACHES_EVERY_TEST[shape]}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    assert select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=True).tests == ("tests/test_x.py",)


def test_a_decorator_that_registers_a_changed_function_makes_every_name_changed():
    app = ("from flask import Flask\n\napp = Flask(__name__)\n\n\n@app.route('/x')\ndef view():\n    return 'a'\n\n\n"
           "@property\ndef plain():\n    return 1\n")
    tests = {**MOD, "pkg/web.py": app, "tests/test_web.py": "from pkg.web import app\n\n\ndef test_x():\n"
                                                             "    assert app.test_client().get('/x')\n"}
    routed = {**tests, "pkg/web.py": app.replace("return 'a'", "return 'b'")}
    # The test calls the app, not the view: only "every name changed" reaches it.
    assert select_affected_tests(routed, ["pkg/web.py"], before=tests, nodes=True).tests == ("tests/test_web.py",)
    wrapped = {**tests, "pkg/web.py": app.replace("return 1", "return 2")}
    assert select_affected_tests(wrapped, ["pkg/web.py"], before=tests, nodes=True).tests == ()


def test_test_classes_inherited_from_another_test_module_are_followed():
    files = {**MOD, "tests/test_base.py": "from pkg.mod import func\n\n\nclass TestBase:\n    def test_func(self):\n"
                                          "        assert func() == 1\n",
             "tests/test_child.py": "from tests.test_base import TestBase\n\n\nclass TestChild(TestBase):\n"
                                    "    pass\n"}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    selected = select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=True).tests
    assert selected == ("tests/test_base.py::TestBase", "tests/test_child.py")


def test_with_nodes_test_names_imported_from_the_standard_library_hold_no_tests():
    files = {**MOD, "tests/test_x.py": "from unittest import TestCase, skipIf\nfrom pkg.mod import func, other\n\n\n"
                                       "class FuncTest(TestCase):\n    def test_f(self):\n        assert func()\n\n\n"
                                       "def test_other():\n    assert other()\n"}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    selected = select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=True).tests
    assert selected == ("tests/test_x.py::FuncTest",)


FIXTURES_ELSEWHERE = {  # found by an attack: a conftest.py that imports its fixtures instead of defining them
    **MOD,
    "tests/fixtures.py": "import pytest\nfrom pkg.mod import func\n\n\n@pytest.fixture\ndef parsed():\n"
                         "    return func()\n",
    "tests/test_x.py": "def test_parsed(parsed):\n    assert parsed == 1\n\n\ndef test_none():\n    assert True\n",
}


@pytest.mark.parametrize("conftest", ["from tests.fixtures import parsed  # noqa\n",
                                      "from .fixtures import *  # noqa\n"])
def test_with_nodes_fixtures_a_conftest_imports_select_the_tests_that_ask_for_them(conftest):
    files = {**FIXTURES_ELSEWHERE, "tests/conftest.py": conftest}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    selected = select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=True).tests
    assert selected == ("tests/test_x.py::test_parsed",)
    # An autouse fixture among them reaches every test below: whole files.
    autouse = {**files, "tests/fixtures.py": files["tests/fixtures.py"].replace("@pytest.fixture\n",
                                                                                "@pytest.fixture(autouse=True)\n")}
    after = {**autouse, "pkg/mod.py": after["pkg/mod.py"]}
    assert select_affected_tests(after, ["pkg/mod.py"], before=autouse, nodes=True).tests == ("tests/test_x.py",)


def test_fixtures_named_like_tests_are_not_tests():
    from remediate.verify.test_items import changed_test_items, test_module

    source = "import pytest\n\n\n@pytest.fixture\ndef test_client():\n    return 1\n\n\n" \
             "def test_get(test_client):\n    assert test_client\n"
    assert list(test_module("tests/test_c.py", source).tests) == ["test_get"]
    # A fix that edits the fixture changes every test that asks for it: the whole file, never a node pytest lacks.
    assert changed_test_items("tests/test_c.py", source, source.replace("return 1", "return 2")) is None


def test_usefixtures_in_pytest_s_config_turns_single_tests_off():
    from remediate.verify.selection import pytest_collects_by_default

    assert not pytest_collects_by_default({"pytest.ini": "[pytest]\nusefixtures = seeded\n"}.get)


def test_with_nodes_fixtures_asked_for_by_a_computed_name_keep_the_file_whole():
    files = {**MOD, "tests/conftest.py": "import pytest\nfrom pkg.mod import func\n\n\n@pytest.fixture\n"
                                         "def value_parsed():\n    return func()\n",
             "tests/test_x.py": "import pytest\n\n\n@pytest.mark.parametrize('kind', ['parsed'])\n"
                                "def test_v(request, kind):\n    assert request.getfixturevalue(f'value_{kind}')\n\n\n"
                                "def test_other():\n    assert True\n"}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    assert select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=True).tests == ("tests/test_x.py",)


@pytest.mark.parametrize("nodes", [True, False])
def test_fixtures_of_a_plugin_named_in_pytest_plugins_reach_the_tests_that_ask_for_them(nodes):
    files = {**MOD, "tests/plugin.py": "import pytest\nfrom pkg.mod import func\n\n\n@pytest.fixture\n"
                                       "def parsed():\n    return func()\n",
             "conftest.py": "pytest_plugins = ['tests.plugin']\n",
             "tests/test_x.py": "def test_parsed(parsed):\n    assert parsed == 1\n\n\ndef test_none():\n    pass\n"}
    after = {**files, "pkg/mod.py": MOD["pkg/mod.py"].replace("return 1", "return 9")}
    selected = select_affected_tests(after, ["pkg/mod.py"], before=files, nodes=nodes).tests
    assert selected == (("tests/test_x.py::test_parsed",) if nodes else ("tests/test_x.py",))


def test_a_decorator_whose_name_only_contains_fixture_does_not_make_a_fixture():
    from remediate.verify.test_items import test_module

    source = "from helpers import with_fixture_data\n\n\n@with_fixture_data\ndef test_x():\n    assert 1\n"
    assert list(test_module("tests/test_d.py", source).tests) == ["test_x"]
