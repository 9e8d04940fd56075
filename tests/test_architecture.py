"""ARCHITECTURE.md matches the code: the layers it lists exist and imports go downhill through them,
only venues/ imports the Binance wire modules, and the error tree is the one it describes."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickpath import errors

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "tickpath"
DOC = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")

# Today's known exceptions to the downhill rule, as (importing module, imported package). Each is a
# process entry point that loads one subcommand's CLI alone, to start fast. Add to this list only
# with a reason; an entry that no longer matches any import fails the test, so the list only shrinks.
UPHILL_ALLOWED = {
    ("tickpath.busbench.__main__", "cli"),  # the remote client: `python -m tickpath.busbench`
    ("tickpath.sweep.probe_cli", "cli"),  # a local probe agent: `tickpath probe` alone
}
# Binance's wire modules: types, decoding, sync rules, normalization. Outside venues/ none may
# import them: the feed engine reaches the venue through venues.binance.processor only.
WIRE_MODULES = {f"tickpath.venues.binance.{m}" for m in ("schemas", "parse", "normalize", "sync")}
WIRE_IMPORTERS_ALLOWED: set[str] = set()


def _modules() -> dict[str, Path]:
    """Every Python module under src/tickpath, by dotted name (packages by their own name)."""
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The longest prefix of ``name`` that is a tickpath module (None: not tickpath)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> Iterator[str]:
    """The tickpath modules ``module`` imports, anywhere in it (lazy and TYPE_CHECKING ones too)."""
    is_pkg = path.name == "__init__.py"
    with warnings.catch_warnings():  # a module's invalid escape sequences are not this test's business
        warnings.simplefilter("ignore")
        tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*pkg, base] if base else pkg)
            # `from a import b` imports the module a.b when there is one, else names from a.
            targets = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None:
                yield resolved


def _room(module: str) -> str:
    """The top-level package or module of ``tickpath.x.y``: ``x`` (``tickpath`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tickpath"


def _layers() -> dict[str, int]:
    """Package -> layer number, from the table under '## Layers' in ARCHITECTURE.md."""
    section = DOC.split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: dict[str, int] = {}
    for row in re.finditer(r"^\| (\d+) [^|]*\| ([^|]+) \|", section, re.M):
        for name in re.findall(r"`([a-z_]+)`", row.group(2)):
            assert name not in layers, f"ARCHITECTURE.md puts {name} in two layers"
            layers[name] = int(row.group(1))
    return layers


LAYERS = _layers()
EDGES = sorted({(m, dep) for m, p in MODULES.items() for dep in _imports(m, p) if _room(dep) != _room(m)})


def test_the_layer_table_parses_into_several_layers() -> None:
    """The layer table is found and lists a real hierarchy (guards the checks below against a silent no-op)."""
    assert len(set(LAYERS.values())) >= 5
    assert LAYERS["errors"] < LAYERS["venues"] < LAYERS["feed"] < LAYERS["cli"]
    assert len(EDGES) > 50


def test_every_package_named_in_the_doc_exists() -> None:
    """Each package in the layer table, and each path and dotted module the page names, is in src/tickpath."""
    for name in LAYERS:
        assert (SRC / name).is_dir() or (SRC / f"{name}.py").is_file(), f"ARCHITECTURE.md names {name}: not found"
    for token in re.findall(r"`([a-z_][a-z_/]*(?:\.py|/))`", DOC):
        path = ROOT / token if token.startswith(("tests/", "src/")) else SRC / token
        assert path.exists(), f"ARCHITECTURE.md names {token}: {path} does not exist"
    flow = DOC.split("## The data path", 1)[1].split("```")[1]
    for dotted in re.findall(r"\b([a-z_]+(?:\.[a-z_]+)+)\b", flow):
        if not dotted.endswith(".py"):
            assert f"tickpath.{dotted}" in MODULES, f"the data path names {dotted}: no such module"


def test_every_package_is_in_a_layer() -> None:
    """Every Python package and top-level module of src/tickpath has a layer in ARCHITECTURE.md."""
    rooms = {_room(m) for m in MODULES} - {"tickpath"}
    missing = sorted(rooms - set(LAYERS))
    assert not missing, f"in no layer of ARCHITECTURE.md: {missing} (add each to the layer table)"


def test_imports_go_downhill() -> None:
    """A package imports only from lower layers, apart from the listed entry points."""
    uphill = []
    used = set()
    for module, dep in EDGES:
        src, dst = _room(module), _room(dep)
        if dst == "tickpath" or src not in LAYERS or dst not in LAYERS:
            continue  # the root's __version__; unlisted packages fail the test above
        if LAYERS[dst] >= LAYERS[src]:
            if (module, dst) in UPHILL_ALLOWED:
                used.add((module, dst))
            else:
                uphill.append(f"{module} (layer {LAYERS[src]}) imports {dep} (layer {LAYERS[dst]})")
    assert not uphill, "imports that do not go downhill:\n" + "\n".join(uphill)
    stale = sorted(UPHILL_ALLOWED - used)
    assert not stale, f"allowed exceptions no longer needed, remove them from UPHILL_ALLOWED: {stale}"


def test_only_venues_imports_the_binance_wire_modules() -> None:
    """Outside venues/, nothing but the allow-listed modules imports Binance's schemas, parser, sync or normalizer."""
    importers = {m for m, dep in EDGES if dep in WIRE_MODULES and _room(m) != "venues"}
    unexpected = sorted(importers - WIRE_IMPORTERS_ALLOWED)
    assert not unexpected, f"Binance wire detail outside venues/: {unexpected}"
    stale = sorted(WIRE_IMPORTERS_ALLOWED - importers)
    assert not stale, (
        f"{stale} no longer import the wire modules: remove them from WIRE_IMPORTERS_ALLOWED and say so in "
        "ARCHITECTURE.md ('Where knowledge lives')"
    )


def _error_classes() -> list[type[BaseException]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BaseException)]


def test_one_error_tree_with_exit_codes() -> None:
    """Every error class is a TickpathError with an exit code, drawn in errors.py's docstring with that code."""
    tree = errors.__doc__ or ""
    for cls in _error_classes():
        assert issubclass(cls, errors.TickpathError), f"{cls.__name__} is outside the tree"
        assert isinstance(cls.exit_code, int)
        line = next((ln for ln in tree.splitlines() if re.search(rf"\b{cls.__name__}\b", ln)), None)
        assert line is not None, f"{cls.__name__} is not drawn in errors.py's tree"
        drawn = re.search(r"exit (\d+)", line)
        if drawn:  # subclasses inherit their parent's code and are drawn without one
            assert int(drawn.group(1)) == cls.exit_code, f"{cls.__name__}: drawn exit {drawn.group(1)}"


@pytest.mark.parametrize("name, code", re.findall(r"`(\w+Error)` \((\d+)", DOC))
def test_exit_codes_in_the_doc_are_the_real_ones(name: str, code: str) -> None:
    """Each `SomeError` (N) in ARCHITECTURE.md is an error class whose exit code is N."""
    assert getattr(errors, name).exit_code == int(code)
