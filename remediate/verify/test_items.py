"""The tests of a pytest test module, read from source: the top-level functions and classes pytest collects
by its default naming rules, and what each of them reads. What lets selection and the regression proof name
single tests (`tests/x.py::test_y`, `tests/x.py::SeekableTest`) instead of whole files. Pure.

Whatever cannot be told for sure (a class pytest may or may not collect, module-level code, an autouse
fixture) is reported as such, and callers fall back to the whole file."""

from __future__ import annotations

import ast
import builtins
import functools
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from remediate.verify import pysource

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_BUILTINS = frozenset(dir(builtins))  # `class Fake(dict)`: no test base
# Module-level set-up pytest runs around every test of the module (xunit style, nose and unittest names).
_XUNIT_HOOKS = frozenset({"setup_module", "teardown_module", "setUpModule", "tearDownModule", "setup_function",
                          "teardown_function", "setup", "teardown"})


def reads(node: ast.AST, fixtures: bool = False) -> set[str]:
    """The global names code reads: `x`, and `m.attr` for an attribute of a plain name (what a module imported
    whole is used through). With `fixtures`, parameter names and identifier-like strings too: pytest passes
    fixtures by parameter name, and `usefixtures("db")` names them in a string."""
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
            found.add(f"{child.value.id}.{child.attr}")
        elif fixtures and isinstance(child, ast.arg):
            found.add(child.arg)
        elif fixtures and isinstance(child, ast.Constant) and isinstance(child.value, str) \
                and child.value.isidentifier():
            found.add(child.value)
    return found


def spread(uses: Mapping[str, set[str]], seeds: Iterable[str],
           also: Callable[[str], Iterable[str]] = lambda name: ()) -> set[str]:
    """`seeds` and every definition that reads one of them, and so on (`uses`: what each definition reads);
    `also` names what a definition reached brings with it (a fixture's alias)."""
    touched, grown = set(seeds), True
    while grown:
        grown = False
        for name, used in uses.items():
            if name not in touched and used & touched:
                touched.add(name)
                touched.update(also(name))
                grown = True
    return touched


def source_of(lines: list[str], node: ast.AST) -> str:
    """A definition's text with its decorators (a changed `parametrize` is a changed test), from its source's
    lines (`splitlines(keepends=True)`)."""
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)])  # type: ignore[attr-defined]
    return "".join(lines[first - 1:node.end_lineno])  # type: ignore[attr-defined]


def _tooling(node: ast.ImportFrom) -> bool:
    """`from unittest import TestCase`: the standard library's and the test runners' names hold no tests."""
    top = (node.module or "").split(".")[0]
    return node.level == 0 and (top in sys.stdlib_module_names or top in ("pytest", "_pytest", "hypothesis"))


def _base_names(node: ast.ClassDef) -> list[str]:
    names = []
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.append(base.id)
        elif isinstance(base, ast.Attribute):
            names.append(base.attr)
        else:
            names.append("")  # a call or subscript: unknown
    return names


def _not_collected(node: ast.ClassDef, local: dict[str, ast.ClassDef], seen: frozenset[str] = frozenset()) -> bool:
    """Whether pytest passes over a `Test*` class: it (or a base of this module) has `__init__` or `__new__`, is
    a dataclass, or says `__test__`."""
    if any(isinstance(m, _FUNCTIONS) and m.name in ("__init__", "__new__") for m in node.body) or any(
            decorator_name(d) == "dataclass" for d in node.decorator_list) or any(
            isinstance(m, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__test__" for t in m.targets)
            for m in node.body):
        return True
    return any(_not_collected(local[b], local, seen | {node.name}) for b in _base_names(node)
               if b in local and b not in seen)


def decorator_name(node: ast.expr) -> str:
    """`functools.lru_cache(maxsize=1)` -> lru_cache, `@pytest.fixture` -> fixture."""
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _is_fixture(node: ast.AST) -> bool:
    return any(decorator_name(d) == "fixture" for d in getattr(node, "decorator_list", []))


def _is_test_method(node: ast.AST) -> bool:
    """A `test*` method pytest collects in a test class (a `test_client` fixture is not one)."""
    return isinstance(node, _FUNCTIONS) and node.name.startswith("test") and not _is_fixture(node)


def _fixture_options(node: ast.AST) -> tuple[str | None, bool]:
    """`@pytest.fixture(name="x", autouse=True)`: the name tests ask for it by, and whether it applies to every
    test of the module."""
    name, autouse = None, False
    for decorator in getattr(node, "decorator_list", []):
        if isinstance(decorator, ast.Call) and decorator_name(decorator) == "fixture":
            for keyword in decorator.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    name = str(keyword.value.value)
                elif keyword.arg == "autouse" and not (isinstance(keyword.value, ast.Constant)
                                                       and not keyword.value.value):
                    autouse = True
    return name, autouse


@dataclass(frozen=True)
class TestModule:
    """A test module's top level, as pytest's default collection sees it."""

    __test__ = False  # not a pytest test class

    tests: dict[str, ast.AST]  # collected: `test_x` functions, `TestY` classes, unittest.TestCase subclasses
    helpers: dict[str, ast.AST]  # every other def: fixtures, helpers, mixins
    unclear: frozenset[str]  # classes pytest may collect or not (an imported base): never narrowed
    everywhere: frozenset[str]  # autouse fixtures and collection hooks: they reach every test
    module_reads: frozenset[str]  # what the module's own top-level code reads
    aliases: dict[str, str]  # fixture name -> the function that provides it
    # Its tests depend on what cannot be read here: tests imported from elsewhere (`from x import test_y`,
    # collected here too), fixtures asked for by a computed name (`request.getfixturevalue(f"v_{kind}")`).
    opaque: bool = False
    fixtures: frozenset[str] = frozenset()  # the functions it makes fixtures of

    @functools.cached_property
    def uses(self) -> dict[str, set[str]]:
        """What each definition reads, fixtures included (computed once: selection asks on every run)."""
        return {name: reads(node, fixtures=True) for name, node in {**self.helpers, **self.tests}.items()}

    def subclassed(self, name: str) -> bool:
        """Whether another class of the module inherits from this one (and so runs its tests too)."""
        return any(isinstance(n, ast.ClassDef) and name in _base_names(n)
                   for n in [*self.tests.values(), *self.helpers.values()])

    def touched(self, changed: frozenset[str]) -> frozenset[str] | None:
        """The module's definitions that read any of `changed`, directly or through its other definitions, with
        the names tests ask for them by (a fixture's `name=`); None when every test may be affected: its
        top-level code, an autouse fixture, a hook or a class we cannot classify reads them."""
        touched = spread(self.uses, changed, lambda name: [a for a, provider in self.aliases.items()
                                                            if provider == name])
        if self.opaque or self.module_reads & touched or (self.unclear | self.everywhere) & touched:
            return None
        return frozenset(touched - changed)

    def affected(self, changed: frozenset[str]) -> frozenset[str] | None:
        """The collected tests that read any of `changed` (names this module imported that a change touches);
        None when every test may be affected (see `touched`) or when nothing visibly uses them (a bare import
        of a changed name still runs at collection)."""
        touched = self.touched(changed)
        hit = frozenset(n for n in self.tests if n in touched) if touched is not None else None
        return hit or None

    def requesting(self, fixtures: frozenset[str]) -> frozenset[str] | None:
        """The collected tests that ask for any of `fixtures` (a conftest.py's), directly or through the module's
        own fixtures; possibly none. None when every test may be affected."""
        touched = self.touched(fixtures)
        return None if touched is None else frozenset(n for n in self.tests if n in touched)


@functools.lru_cache(maxsize=2048)
def test_module(path: str, source: str) -> TestModule | None:
    """The module's tests by pytest's default rules (`test*` functions, `Test*` classes without `__init__`,
    unittest.TestCase subclasses); None when it does not parse."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return None
    tests: dict[str, ast.AST] = {}
    helpers: dict[str, ast.AST] = {}
    unclear: set[str] = set()
    everywhere: set[str] = set()
    aliases: dict[str, str] = {}
    module_reads: set[str] = set()
    opaque = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "getfixturevalue"
                 and not (n.args and isinstance(n.args[0], ast.Constant)) for n in pysource.nodes(path, source))
    local_classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    unittest_like: set[str] = set()
    for node in tree.body:  # in order: a base is defined before its subclasses
        if isinstance(node, ast.ClassDef):
            bases = _base_names(node)
            plain = all(b in local_classes or b in _BUILTINS for b in bases)  # no imported base
            if any(b.endswith("TestCase") or b in unittest_like for b in bases):
                unittest_like.add(node.name)
                tests[node.name] = node
            elif node.name.startswith("Test") and plain and not _not_collected(node, local_classes):
                tests[node.name] = node
            else:
                helpers[node.name] = node  # a mixin's tests run through the Test classes that name it
                if not plain or node.name.startswith("Test"):
                    unclear.add(node.name)  # an imported base may make it a test class, or give it `__init__`
        elif isinstance(node, _FUNCTIONS):
            if node.name.startswith("test") and not _is_fixture(node):  # `def test_client()` fixtures are common
                tests[node.name] = node
            else:
                helpers[node.name] = node
                alias, autouse = _fixture_options(node)
                if alias:
                    aliases[alias] = node.name
                aliases.setdefault(node.name, node.name)
                if autouse or node.name.startswith("pytest_") or node.name in _XUNIT_HOOKS:
                    everywhere.add(node.name)
        elif isinstance(node, ast.ImportFrom) and not _tooling(node) and any(
                (a.asname or a.name).startswith(("test", "Test")) for a in node.names):
            opaque = True  # pytest collects it here too, and what it reads is elsewhere
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            module_reads |= reads(node, fixtures=True)  # `pytestmark = pytest.mark.usefixtures("db")`
    return TestModule(tests, helpers, frozenset(unclear), frozenset(everywhere), frozenset(module_reads), aliases,
                      opaque, frozenset(n for n, node in helpers.items() if _is_fixture(node)))


def test_texts(path: str, source: str) -> dict[str, str] | None:
    """Each collected test's text, by node id suffix: `test_x`, and `Cls::test_y` for a class's tests; None when
    the module does not parse."""
    module = test_module(path, source)
    if module is None:
        return None
    texts: dict[str, str] = {}
    lines = source.splitlines(keepends=True)
    for name, node in module.tests.items():
        members = node.body if isinstance(node, ast.ClassDef) else []
        texts.update({f"{name}::{m.name}": source_of(lines, m) for m in members if _is_test_method(m)})
        if not isinstance(node, ast.ClassDef):
            texts[name] = source_of(lines, node)
    return texts


def changed_test_items(path: str, before: str, after: str) -> list[str] | None:
    """The tests added or changed from `before` to `after` (`test_x`, `Cls::test_y`, a new class whole); None
    when something else changed too (then every test of the file may behave otherwise: module code, a fixture,
    a class's own body), a changed class is inherited by another, or a side does not parse. A test the fix
    removes is not run (upstream fixes drop the tests of the behaviour they revert)."""
    old, new = test_texts(path, before), test_texts(path, after)
    old_module, module = test_module(path, before), test_module(path, after)
    if old is None or new is None or old_module is None or module is None:
        return None
    changed: list[str] = []
    for name, text in new.items():
        owner = name.split("::")[0]
        if old.get(name) == text or owner in changed:
            continue
        changed.append(owner if "::" in name and owner not in old_module.tests else name)  # a new class, whole
    if not changed or any(module.subclassed(name.split("::")[0]) for name in changed):
        return None
    new_classes = {name for name in changed if name not in old_module.tests and name not in old}
    same = _shape(path, before, old_module, set()) == _shape(path, after, module, new_classes)
    return changed if same else None


def _shape(path: str, source: str, module: TestModule, leave_out: set[str]) -> list[str] | None:
    """The module with its tests taken out, as syntax, not text: whitespace in a string counts, a blank line
    does not. A test class stays as its bases, decorators and other members."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return None
    shape = []
    for node in tree.body:
        if getattr(node, "name", None) in leave_out or (isinstance(node, _FUNCTIONS) and node.name in module.tests):
            continue
        if isinstance(node, ast.ClassDef) and node.name in module.tests:
            members = [m for m in node.body if not _is_test_method(m)]
            shape.append(node.name + "".join(ast.dump(p) for p in [*node.decorator_list, *node.bases,
                                                                  *node.keywords, *members]))
            continue
        shape.append(ast.dump(node))
    return shape
