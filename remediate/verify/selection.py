"""Which tests exercise a change: the Python import graph, read from source. Pure."""

from __future__ import annotations

import ast
import functools
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pathspec

from remediate.guard.testfiles import is_test_module
from remediate.verify import pysource
from remediate.verify.coverage_map import CoverageMap
from remediate.verify.test_items import changed_test_items, decorator_name, reads, spread, test_module


def module_names(path: str) -> set[str]:
    """Dotted names a file can be imported as (plain and `src/` layouts)."""
    if not path.endswith(".py"):
        return set()
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    names = set()
    for start in range(len(parts)):
        # Any suffix is a candidate root (tests often put `src/` or a service folder on sys.path).
        if parts[start:]:
            names.add(".".join(parts[start:]))
    return names


@functools.lru_cache(maxsize=8192)
def plugins_of(path: str, source: str) -> frozenset[str]:
    """The modules a module-level `pytest_plugins = ["tests.plugin"]` loads: pytest imports them whole and
    offers their fixtures, as `from tests.plugin import *` would."""
    tree = pysource.parsed(path, source)
    found: set[str] = set()
    for node in tree.body if tree is not None else []:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytest_plugins"
                                                for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            found |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return frozenset(found)


def _from_base(node: ast.ImportFrom, package: str) -> str:
    """The module a `from … import` reads from, relative imports resolved against the importing package."""
    base = node.module or ""
    if node.level:
        anchor = package.split(".") if package else []
        anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
        base = ".".join([*anchor, base] if base else anchor)
    return base


@functools.lru_cache(maxsize=8192)  # each run_tests call asks again about mostly unchanged files
def imported_modules(path: str, source: str) -> frozenset[str]:
    """Every module name an import in `source` may load, parents included (importing a.b runs a)."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return frozenset()
    package = posixpath.dirname(path).replace("/", ".")
    found: set[str] = set()
    for node in pysource.nodes(path, source):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            if base:
                found.add(base)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if base else alias.name)
    found |= plugins_of(path, source)
    with_parents = set()
    for name in found:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(with_parents)


ALL: frozenset[str] = frozenset({"*"})  # every name of a module (what cannot be narrowed)


def changed_names(before: str | None, after: str | None, path: str = "") -> frozenset[str]:
    """The top-level functions and classes a change to a module touches; ALL when anything else at the top level
    changed (module code, imports, assignments), or when either side does not parse."""
    old, new = pysource.parsed(path, before or ""), pysource.parsed(path, after or "")
    if old is None or new is None:
        return ALL
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

    def split(tree: ast.Module) -> tuple[dict[str, str], list[str]]:
        named = {n.name: ast.dump(n) for n in tree.body if isinstance(n, defs)}
        rest = [ast.dump(n) for n in tree.body if not isinstance(n, defs)]
        return named, rest

    (old_defs, old_rest), (new_defs, new_rest) = split(old), split(new)
    if old_rest != new_rest:
        return ALL
    changed = frozenset(n for n in set(old_defs) | set(new_defs) if old_defs.get(n) != new_defs.get(n))
    decorated = {n.name for tree in (old, new) for n in tree.body if isinstance(n, defs) and n.name in changed
                 and any(decorator_name(d) not in PURE_DECORATORS for d in n.decorator_list)}
    # `@app.route("/x")`, `@register`: the decorator hands the definition to something else at import, so who
    # uses it cannot be told by name (a test calls the app, not the view).
    return ALL if decorated else changed


# Decorators that only wrap or describe what they decorate, registering it nowhere.
PURE_DECORATORS = frozenset({"staticmethod", "classmethod", "property", "wraps", "lru_cache", "cache",
                             "cached_property", "total_ordering", "dataclass", "overload", "abstractmethod",
                             "contextmanager", "asynccontextmanager", "final", "runtime_checkable", "singledispatch",
                             "deprecated"})


@dataclass(frozen=True)
class _Uses:
    """How a module uses another: the names it takes from it (`from m import a as b`: {b: a}), whether it takes
    all of them (`*`), and whether it holds the module itself (then every name, or the attributes it reads)."""
    bindings: tuple[tuple[str, str], ...] = ()
    star: bool = False
    whole: bool = False
    attributes: frozenset[str] | None = None  # with `whole`: the attributes read of it; None: it escapes
    below: bool = False  # it only imports a module below this one, which runs this one's code
    aliases: tuple[str, ...] = ()  # with `whole`: the names it holds the module by (`import m as mi`: mi)


@functools.lru_cache(maxsize=8192)
def _uses(path: str, source: str, module: str) -> _Uses:
    """How `source` uses `module` (one of the names the changed file imports as)."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return _Uses(whole=True)
    package = posixpath.dirname(path).replace("/", ".")
    bindings: list[tuple[str, str]] = []
    star = whole = chained = False  # chained: `import a.b.m`, read as `a.b.m.name`
    aliases: set[str] = set()
    walked = pysource.nodes(path, source)
    for node in walked:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == module or alias.name.startswith(module + "."):
                    whole = True
                    aliases.add(alias.asname or alias.name.split(".")[0])
                    chained = chained or (alias.asname is None and "." in alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, package)
            for alias in node.names:
                if base == module:
                    if alias.name == "*":
                        star = True
                    else:
                        bindings.append((alias.asname or alias.name, alias.name))
                elif f"{base}.{alias.name}" == module:  # from pkg import mod: the module itself
                    whole = True
                    aliases.add(alias.asname or alias.name)
                elif module.startswith(f"{base}.{alias.name}.") or (base and module.startswith(base + ".")
                                                                    and alias.name == "*"):
                    whole = True  # a parent of it, or everything of a parent: cannot be narrowed
    star = star or module in plugins_of(path, source)
    if not (bindings or star or whole):
        # It imports something below the module (importing a.b.c runs a/b/__init__.py): it depends on the
        # module's code running, not on its names.
        return _Uses(below=True)
    attributes: set[str] | None = set()
    if whole:
        for node in walked:
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                attributes.add(node.attr)  # type: ignore[union-attr]
        loads = sum(1 for n in walked if isinstance(n, ast.Name) and n.id in aliases)
        held = sum(1 for n in walked if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                    and n.value.id in aliases)
        if loads != held or not aliases or not attributes or chained:
            attributes = None  # passed around, never read by attribute, or imported in a way we cannot follow
    return _Uses(tuple(bindings), star, whole, frozenset(attributes) if attributes is not None else None,
                 aliases=tuple(sorted(aliases)))


def _is_reexporter(path: str, source: str) -> bool:
    """A module that only imports and lists names (`__init__.py` of a package that re-exports its modules)."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return False
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, (ast.Assign, ast.AugAssign)) and all(
                isinstance(t, ast.Name) and t.id == "__all__"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            continue
        return False
    return True


@functools.lru_cache(maxsize=8192)
def _dependents(path: str, source: str, bound: frozenset[str]) -> frozenset[str]:
    """The top-level functions and classes of a module whose code uses any of `bound` (names it imported that
    changed), and those that use them, and so on; ALL when its module-level code uses them."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return ALL
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    uses = {n.name: reads(n) for n in tree.body if isinstance(n, defs)}
    module_level = {name for n in tree.body if not isinstance(n, (*defs, ast.Import, ast.ImportFrom))
                    for name in reads(n)}
    touched = spread(uses, bound)
    if module_level & touched:
        return ALL
    return frozenset(touched - bound) | frozenset(n for n in bound if n in uses)


def _passed_on(uses: _Uses, names: frozenset[str]) -> frozenset[str]:
    """The names of the using module that carry a change to `names` of the used one (empty: none do)."""
    if names == ALL:
        return ALL  # everything of it may have changed: so may everything of what uses it
    if uses.whole and uses.attributes is None:
        return ALL
    # A module held whole carries what it reads of the changed names, as `alias.name` (`mi.seekable`).
    found = {f"{alias}.{name}" for alias in uses.aliases for name in (uses.attributes or frozenset()) & names}
    found |= {bound for bound, original in uses.bindings if original in names}
    if uses.star:
        found |= names
    return frozenset(found)


def _single_tests(path: str, source: str, before: str | None, changed: bool, taken: frozenset[str] | None,
                  fixtures: frozenset[str] = frozenset()) -> dict[str, frozenset[str] | None] | None:
    """The tests of a test module a change reaches, by pytest node id suffix: those the change adds or edits
    (None beside them), those that use the changed names it takes, and those that ask for `fixtures` (of a
    conftest.py) that use the change (the names beside them); possibly none. None: the whole file (a new file, a
    change outside its tests, names it uses at module level or cannot follow)."""
    module = test_module(path, source)
    if module is None or taken == ALL:
        return None
    picked: dict[str, frozenset[str] | None] = {}
    if changed:
        items = changed_test_items(path, before, source) if before is not None else None
        if items is None:
            return None
        picked.update(dict.fromkeys(items))
    for names, hit in ((taken, module.affected(taken) if taken else frozenset()),
                       (fixtures, module.requesting(fixtures) if fixtures else frozenset())):
        if hit is None:
            return None
        for test in hit:
            picked.setdefault(test, frozenset(n for n in names or () if n in module.uses[test]) or names)
    # A whole class runs its tests: a single test of it is not named again.
    return {t: u for t, u in picked.items() if "::" not in t or t.split("::")[0] not in picked}


def _imports_set_up(path: str, sources: Mapping[str, str], names: Mapping[str, frozenset[str]],
                    reached: Mapping[str, str]) -> bool:
    """Whether a conftest.py imports, from a module the change reaches, fixtures that reach every test (an
    autouse fixture, a hook) or that cannot be told apart (`from .fixtures import *` of a module whose top level
    uses the change)."""
    tree = pysource.parsed(path, sources[path])
    package = posixpath.dirname(path).replace("/", ".")
    bases = {_from_base(n, package) for n in (tree.body if tree is not None else []) if isinstance(n, ast.ImportFrom)}
    for base in bases | plugins_of(path, sources[path]):
        for other in reached:
            if other != path and base in module_names(other) and other in sources:
                module, carried = test_module(other, sources[other]), names.get(other, ALL)
                if module is not None and not module.fixtures:
                    continue  # not a module of fixtures (the project's own code, imported by name)
                if module is None or carried == ALL or module.touched(carried) is None:
                    return True
    return False


def _below(folder: str, top: str) -> bool:
    """Whether `folder` is `top` or inside it ("" is the repository's root)."""
    return top == "" or folder == top or folder.startswith(top + "/")


def _origin(used: frozenset[str], reached: str | None, fixtures: frozenset[str] | None) -> str:
    """Where the names a single test uses come from, for its reason."""
    return "a conftest.py" if fixtures and used <= fixtures else (reached or "the change")


def _offered_fixtures(sources: Mapping[str, str], names: Mapping[str, frozenset[str]],
                      reached: Mapping[str, str]) -> dict[str, frozenset[str] | None]:
    """For each folder whose conftest.py (or a parent's) offers fixtures that use the change: those fixtures'
    names, for the tests below it to be looked up by. None: every test below may be affected (its module-level
    code, an autouse fixture or a hook uses the change)."""
    offered: dict[str, frozenset[str] | None] = {}
    for path in sorted((p for p in sources if posixpath.basename(p) == "conftest.py"), key=lambda p: p.count("/")):
        folder = posixpath.dirname(path)
        inherited: frozenset[str] | None = frozenset()
        for parent, fixtures in offered.items():
            if _below(folder, parent) and folder != parent:
                inherited = None if fixtures is None or inherited is None else inherited | fixtures
        own = names.get(path, frozenset()) if path in reached else frozenset()
        if inherited is None or own == ALL:
            offered[folder] = None
            continue
        if not (inherited | own):
            continue
        module = test_module(path, sources[path])
        touched = module.touched(inherited | own) if module is not None else None
        if module is None or touched is None or _imports_set_up(path, sources, names, reached):
            offered[folder] = None
            continue
        # Its own fixtures that use the change, and what it imports that does (a fixture defined elsewhere
        # is offered under the name it is imported as).
        offered[folder] = inherited | (touched & set(module.aliases)) | own
    return offered


@functools.lru_cache(maxsize=8192)
def string_constants(path: str, source: str) -> frozenset[str]:
    """The string literals of `source`: how a test names a file or module it runs in a subprocess."""
    tree = pysource.parsed(path, source)
    if tree is None:
        return frozenset()
    return frozenset(node.value for node in pysource.nodes(path, source)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 500)


def runs_in_subprocess(strings: frozenset[str], path: str) -> bool:
    """Whether string literals name `path` as something to run: the path itself (`python tabulate/__init__.py`),
    or its module after `-m` (`python -m tabulate`, or `"-m", "tabulate"` in an argv)."""
    if not path.endswith(".py"):
        return False
    if any(path in text for text in strings):
        return True
    modules = module_names(path)
    if "-m" in strings and modules & strings:
        return True
    return any(re.search(rf"-m\s+{re.escape(name)}(?![\w.])", text) for text in strings for name in modules)


@dataclass(frozen=True)
class Selection:
    tests: tuple[str, ...]
    reason: dict[str, str]


def select_affected_tests(sources: Mapping[str, str], changed: Iterable[str],
                          test_map: Mapping[str, Sequence[str]] | None = None,
                          files: Iterable[str] = (), before: Mapping[str, str] | None = None,
                          nodes: bool = False) -> Selection:
    """Test files that use what a change touches, directly or through other modules, changed tests, and
    the tests `test_map` names for changed paths the import graph cannot see (templates, config). With
    `before`, names are followed, not just modules: a change to one function of a module a package re-exports
    (`from .more import *`) reaches the tests that use that name, not every importer of the package. With
    `nodes` (pytest, collecting by its default rules), a test file is narrowed to its tests that use the
    changed names and the tests the change adds or edits (`tests/x.py::test_y`), where that can be told."""
    changed = list(changed)
    importers: dict[str, set[str]] = {}
    for path, source in sources.items():
        for module in imported_modules(path, source):
            importers.setdefault(module, set()).add(path)
    reason: dict[str, str] = {}
    reached: dict[str, str] = {}
    names: dict[str, frozenset[str]] = {}
    into_tests: dict[str, frozenset[str]] = {}  # test module -> the changed names it takes
    frontier = []
    for path in changed:
        reached[path] = path
        names[path] = changed_names(before.get(path), sources.get(path), path) if before is not None and \
            path.endswith(".py") and not is_test_module(path) else ALL
        if names[path] != ALL and path in sources:  # and what of the module itself calls them
            names[path] = _dependents(path, sources[path], names[path]) | names[path]
        frontier.append(path)
    while frontier:
        path = frontier.pop()
        for name in module_names(path):
            for importer in importers.get(name, ()):
                if importer == path:
                    continue
                carried = _passed_on(_uses(importer, sources[importer], name), names[path])
                if not carried:
                    continue  # it takes nothing the change touches
                if is_test_module(importer):
                    taken = into_tests.get(importer, frozenset())
                    into_tests[importer] = ALL if ALL in (carried, taken) else taken | carried
                if not _is_reexporter(importer, sources[importer]):
                    # Its own code uses what changed: the functions and classes that do (and re-exports; a test
                    # module's, for the test modules that import its classes to inherit them).
                    carried = ALL if carried == ALL else _dependents(importer, sources[importer], carried) | carried
                known = names.get(importer, frozenset())
                grown = ALL if ALL in (carried, known) else known | carried
                if importer not in reached or grown != known:
                    reached.setdefault(importer, reached[path])
                    names[importer] = grown
                    frontier.append(importer)
    conftest_dirs = {posixpath.dirname(p) for p in reached if posixpath.basename(p) == "conftest.py"}
    offered = _offered_fixtures(sources, names, reached) if nodes else {}
    for path in sources:
        if not is_test_module(path):
            continue
        folder = posixpath.dirname(path)
        conftest = next((d for d in sorted(conftest_dirs) if _below(folder, d)), None)
        fixtures: frozenset[str] | None = frozenset()
        for d, given in offered.items():
            if _below(folder, d):
                fixtures = None if given is None or fixtures is None else fixtures | given
        ran = next((c for c in changed if runs_in_subprocess(string_constants(path, sources[path]), c)), None)
        single = None
        if nodes and ran is None and fixtures is not None and (path in reached or conftest is not None):
            single = _single_tests(path, sources[path], (before or {}).get(path), path in changed,
                                   into_tests.get(path), fixtures)
        if single is not None:
            for test, used in single.items():
                reason[f"{path}::{test}"] = "changed" if used is None else \
                    f"uses {', '.join(sorted(used)[:3])} of {_origin(used, reached.get(path), fixtures)}"
        elif path in reached:
            reason[path] = "changed" if reached[path] == path else f"imports {reached[path]}"
        elif ran is not None:
            reason[path] = f"runs {ran} (names it in a string, as a subprocess command does)"
        elif conftest is not None:
            reason[path] = f"conftest.py in {conftest or '.'} depends on the change"
    for path in changed:
        if is_test_module(path) and path not in sources:
            reason[path] = "changed"
    known = sorted(set(files) | set(sources))
    for pattern, targets in (test_map or {}).items():
        hits = [p for p in changed if pathspec.GitIgnoreSpec.from_lines([pattern]).match_file(p)]
        if not hits:
            continue
        spec = pathspec.GitIgnoreSpec.from_lines(targets)
        for test in [p for p in known if spec.match_file(p)] or list(targets):
            reason.setdefault(test, f"tests.map: {pattern} matches {hits[0]}")
    return Selection(tuple(sorted(reason)), reason)


def select_with_coverage(coverage: CoverageMap | None, before: Mapping[str, str], after: Mapping[str, str],
                         changed: Iterable[str], test_map: Mapping[str, Sequence[str]] | None = None,
                         files: Iterable[str] = (), nodes: bool = False) -> Selection:
    """Single tests for changes the coverage map vouches for (bodies of functions it recorded, in files
    unchanged since), tests from the import graph for every other change (files, or with `nodes` single tests
    where the names tell)."""
    narrowed: dict[str, str] = {}
    rest: list[str] = []
    for path in changed:
        found = None
        if coverage is not None and path.endswith(".py") and not is_test_module(path) and path in before \
                and path in after:
            found = coverage.tests_for(path, before[path], after[path])
        if found is None:
            rest.append(path)
            continue
        tests, why = found
        for test in tests:
            narrowed.setdefault(test, f"{path}: {why}")
    graph = select_affected_tests(after, rest, test_map, files, before, nodes) if rest else Selection((), {})
    reason = dict(graph.reason)
    for test, why in narrowed.items():
        if test.split("::")[0] not in reason:  # a whole file already runs every test in it
            reason[test] = why
    return Selection(tuple(sorted(reason)), reason)


def _pytest_options(read: Callable[[str], str | None]) -> dict[str, object] | None:
    """The options of the first config file pytest would use (pytest.ini, pyproject.toml, tox.ini, setup.cfg at
    the root, as the base commit has them); None when there is none."""
    import configparser
    import tomllib

    for name, section in (("pytest.ini", "pytest"), ("pyproject.toml", None), ("tox.ini", "pytest"),
                          ("setup.cfg", "tool:pytest")):
        text = read(name)
        if text is None:
            continue
        try:
            if section is None:
                options = tomllib.loads(text).get("tool", {}).get("pytest", {}).get("ini_options")
                if isinstance(options, dict):
                    return options
                continue
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(text)
        except (tomllib.TOMLDecodeError, configparser.Error, AttributeError, TypeError):
            continue
        if parser.has_section(section):
            return {key: value.split() for key, value in parser.items(section)}
    return None


def pytest_testpaths(read: Callable[[str], str | None]) -> tuple[str, ...] | None:
    """pytest's `testpaths`; None when its config does not set it."""
    value = (_pytest_options(read) or {}).get("testpaths")
    if isinstance(value, str):
        value = value.split()
    return tuple(str(v) for v in value) or None if isinstance(value, list) else None


def pytest_collects_by_default(read: Callable[[str], str | None]) -> bool:
    """Whether pytest names tests by its default rules (`test*` functions, `Test*` classes, `test_*.py` files) and
    gives them only the fixtures they ask for: what single-test selection reads test modules by."""
    options = _pytest_options(read) or {}
    # `usefixtures` in the config gives every test fixtures no test names.
    return not any(key in options for key in ("python_functions", "python_classes", "python_files", "usefixtures"))


def collected(tests: Sequence[str], testpaths: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The selected tests pytest collects by its own `testpaths`, and those it does not (a benchmarks/ folder):
    given on the command line, pytest would run them anyway, so they are left out."""
    if not testpaths:
        return list(tests), []
    roots = [posixpath.normpath(t).rstrip("/") for t in testpaths]
    inside = [t for t in tests if any(t.split("::")[0] == r or t.startswith(r + "/") for r in roots)]
    return inside, [t for t in tests if t not in inside]

