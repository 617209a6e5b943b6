"""What counts as a test, defined once. Pure.

Test code (`is_test_code`) is what the default edit scope lets the model change besides the suspect
files, and what the regression proof carries back to the code before the fix. A test module
(`is_test_module`) is test code that pytest collects on its own; it is what test selection runs and
what the regression proof judges."""

from __future__ import annotations

from collections.abc import Sequence

import pathspec

TEST_CODE_GLOBS: tuple[str, ...] = ("test_*.py", "*_test.py", "tests/**", "test/**", "conftest.py", "*.test.*",
                                    "*.spec.*", "__tests__/**", "*_test.go")
_TEST_CODE = pathspec.GitIgnoreSpec.from_lines(TEST_CODE_GLOBS)
_TEST_MODULE = pathspec.GitIgnoreSpec.from_lines(["test_*.py", "*_test.py"])


def is_test_code(path: str, extra_globs: Sequence[str] = ()) -> bool:
    if _TEST_CODE.match_file(path):
        return True
    return bool(extra_globs) and pathspec.GitIgnoreSpec.from_lines(extra_globs).match_file(path)


def is_test_module(path: str) -> bool:
    return _TEST_MODULE.match_file(path)
