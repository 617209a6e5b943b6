from remediate.verify.execute import TestFailure, TestRun
from remediate.verify.regression import blamed_failures, judge

NEW = ("tests/test_leak.py",)


def _run(status: str, *failures: str) -> TestRun:
    return TestRun(("pytest",), (), status, passed=3, failed=len(failures),
                   failures=tuple(TestFailure(name, "E   assert 5000 <= 1000\nE    + where 5000 = len(x)")
                                  for name in failures), failed_tests=failures)


def test_fails_before_passes_after():
    proof = judge(NEW, _run("failed", "tests.test_leak::test_bounded"), _run("passed"))
    assert proof.proven and "assert 5000 <= 1000" in proof.detail and proof.pre_existing_failures == ()


def test_an_import_error_before_the_fix_counts_as_failing_and_says_so():
    proof = judge(NEW, _run("error", "tests.test_leak"), _run("passed"))
    assert proof.verdict == "fails_before_passes_after" and "tests.test_leak:" in proof.detail


def test_a_new_test_that_passes_without_the_fix_proves_nothing():
    assert judge(NEW, _run("passed"), _run("passed")).verdict == "passes_before"


def test_no_new_test_and_not_run():
    assert judge((), _run("passed"), _run("passed")).verdict == "no_new_test"
    assert judge(NEW, None, _run("passed")).verdict == "not_run"


def test_pre_existing_failures_are_not_blamed_on_the_fix():
    before = _run("failed", "tests.test_leak::test_bounded", "tests.test_billing::test_rounding")
    after = _run("failed", "tests.test_billing::test_rounding")
    proof = judge(NEW, before, after)
    assert proof.pre_existing_failures == ("tests.test_billing::test_rounding",)
    assert proof.proven and blamed_failures(after, proof) == []
    broken = _run("failed", "tests.test_billing::test_rounding", "tests.test_api::test_profile")
    assert blamed_failures(broken, proof) == ["tests.test_api::test_profile"]


def test_a_new_test_failing_after_the_fix():
    assert judge(NEW, _run("failed"), _run("failed", "tests.test_leak::test_bounded")).verdict == "fails_after"


OLD_TESTS = '''import pytest

from pkg import f


@pytest.fixture
def thing():
    return 1


def test_old():
    assert f(1) == 1


class TestGroup:
    def test_kept(self):
        assert f(2) == 2
'''


def _change(before: str | None, after: str, path: str = "tests/test_f.py"):
    from remediate.guard.changes import Change, ChangeSet
    return ChangeSet({path: Change(path, before, after), "pkg/f.py": Change("pkg/f.py", "x = 1\n", "x = 2\n")})


def test_the_proof_runs_only_the_tests_the_fix_adds_or_changes():
    from remediate.verify.regression import changed_test_nodes
    added = OLD_TESTS + "\n\ndef test_new():\n    assert f(3) == 3\n"
    assert changed_test_nodes(_change(OLD_TESTS, added)) == ("tests/test_f.py::test_new",)
    edited = OLD_TESTS.replace("assert f(2) == 2", "assert f(2) == 2 and f(0) == 0")
    assert changed_test_nodes(_change(OLD_TESTS, edited)) == ("tests/test_f.py::TestGroup::test_kept",)


def test_a_new_file_or_a_change_outside_the_tests_runs_the_whole_file():
    from remediate.verify.regression import changed_test_nodes
    assert changed_test_nodes(_change(None, OLD_TESTS)) == ("tests/test_f.py",)
    fixture = OLD_TESTS.replace("return 1", "return 2") + "\n\ndef test_new():\n    assert True\n"
    assert changed_test_nodes(_change(OLD_TESTS, fixture)) == ("tests/test_f.py",)  # every test may use it
    assert changed_test_nodes(_change(OLD_TESTS, OLD_TESTS + "\nimport os\n")) == ("tests/test_f.py",)
    assert changed_test_nodes(_change(OLD_TESTS, "def broken(:\n")) == ("tests/test_f.py",)


UNITTEST_TESTS = '''import unittest

import more_itertools as mi


class SeekableTest(unittest.TestCase):
    def setUp(self):
        self.items = [0, 1, 2]

    def test_relative_seek(self):
        s = mi.seekable(self.items)
        self.assertEqual(next(s), 0)

    def test_peek(self):
        self.assertEqual(mi.seekable(self.items).peek(), 0)


class Helper(dict):
    pass


@unittest.skipIf(False, "never")
def test_plain():
    assert mi.first([1]) == 1
'''


def test_unittest_classes_and_decorated_tests_are_named_by_node_id():
    from remediate.verify.regression import changed_test_nodes
    # more-itertools' regression tests sit in unittest.TestCase classes whose names do not start with Test.
    edited = UNITTEST_TESTS.replace("self.assertEqual(next(s), 0)", "self.assertEqual(next(s), 0)\n        s.seek(0)")
    assert changed_test_nodes(_change(UNITTEST_TESTS, edited)) == ("tests/test_f.py::SeekableTest::test_relative_seek",)
    decorated = UNITTEST_TESTS.replace('skipIf(False, "never")', 'skipIf(True, "now")')
    assert changed_test_nodes(_change(UNITTEST_TESTS, decorated)) == ("tests/test_f.py::test_plain",)
    added = UNITTEST_TESTS + "\n\nclass TestNew:\n    def test_a(self):\n        assert 1\n\n    def test_b(self):\n" \
                             "        assert 2\n"
    assert changed_test_nodes(_change(UNITTEST_TESTS, added)) == ("tests/test_f.py::TestNew",)


def test_a_change_a_node_id_cannot_hold_runs_the_whole_file():
    from remediate.verify.regression import changed_test_nodes
    whole = ("tests/test_f.py",)
    set_up = UNITTEST_TESTS.replace("[0, 1, 2]", "[0, 1, 2, 3]")  # every test of the class reads it
    assert changed_test_nodes(_change(UNITTEST_TESTS, set_up)) == whole
    inherited = UNITTEST_TESTS.replace("    def test_peek", "    def test_peek_more(self):\n        pass\n\n"
                                       "    def test_peek") + "\n\nclass SeekableAgain(SeekableTest):\n    pass\n"
    edited = inherited.replace("s.peek(), 0)", "s.peek(), 0)  # again").replace(
        "self.assertEqual(mi.seekable(self.items).peek(), 0)", "self.assertEqual(mi.seekable(self.items).peek(), 0)\n")
    assert changed_test_nodes(_change(inherited, edited)) == whole  # SeekableAgain runs it too
    helper = UNITTEST_TESTS.replace("class Helper(dict):\n    pass", "class Helper(dict):\n    x = 1")
    assert changed_test_nodes(_change(UNITTEST_TESTS, helper)) == whole
    imported_base = "from base import Base\n\n\nclass Checks(Base):\n    def test_a(self):\n        assert 1\n"
    assert changed_test_nodes(_change(imported_base, imported_base.replace("assert 1", "assert 2"))) == whole


def test_a_proof_run_that_ran_none_of_the_new_tests_proves_nothing():
    # pytest found none of the nodes asked for (exit 4 or 5): not "passes before".
    assert judge(NEW, _run("no_tests"), _run("passed")).verdict == "not_run"


RENDER = '''from fmt import render

EXPECTED = """\\\\
root
 child
"""


def _helper(d):
    if d:
        d["k"] = 2
    return d


def test_render():
    assert render() == EXPECTED
'''


def test_module_code_is_compared_as_syntax_whitespace_in_a_string_counts_a_blank_line_does_not():
    """Found by an attack: module code compared with its whitespace stripped missed an EXPECTED string the fix
    edited (and a dedented line of a helper), so the proof ran only the new test and never the one that proves."""
    from remediate.verify.regression import changed_test_nodes
    new_test = "\n\ndef test_new():\n    assert render()\n"
    whole = ("tests/test_f.py",)
    assert changed_test_nodes(_change(RENDER, RENDER.replace(" child", "    child") + new_test)) == whole
    dedented = RENDER.replace('        d["k"] = 2\n', '        pass\n    d["k"] = 2\n')
    assert changed_test_nodes(_change(RENDER, dedented + new_test)) == whole
    assert changed_test_nodes(_change(RENDER, RENDER + "\n\n" + new_test)) == ("tests/test_f.py::test_new",)
    # A method added to an existing class is that method, not the whole file.
    added = UNITTEST_TESTS.replace("    def test_peek(self):", "    def test_more(self):\n        assert 1\n\n"
                                   "    def test_peek(self):")
    assert changed_test_nodes(_change(UNITTEST_TESTS, added)) == ("tests/test_f.py::SeekableTest::test_more",)


def test_a_test_class_pytest_will_not_collect_is_never_named():
    from remediate.verify.regression import changed_test_nodes
    inherited_init = "class Base:\n    def __init__(self):\n        pass\n\n\nclass TestHelper(Base):\n" \
                     "    def test_like(self):\n        assert 1\n"
    edited = inherited_init.replace("assert 1", "assert 2")
    assert changed_test_nodes(_change(inherited_init, edited)) == ("tests/test_f.py",)
    not_a_test = "class TestData:\n    __test__ = False\n\n    def test_x(self):\n        assert 1\n"
    assert changed_test_nodes(_change(not_a_test, not_a_test.replace("assert 1", "assert 2"))) == ("tests/test_f.py",)


def test_a_test_the_fix_removes_is_not_run_and_does_not_widen_the_proof():
    from remediate.verify.regression import changed_test_nodes
    # attrs 21.1.0's fix dropped the tests of the behaviour it reverted, beside the one it added.
    removed = UNITTEST_TESTS.replace("    def test_peek(self):\n        self.assertEqual(mi.seekable(self.items)"
                                     ".peek(), 0)\n", "").replace("assertEqual(next(s), 0)", "assertEqual(next(s), 1)")
    assert removed != UNITTEST_TESTS
    nodes = changed_test_nodes(_change(UNITTEST_TESTS, removed))
    assert nodes == ("tests/test_f.py::SeekableTest::test_relative_seek",)
