"""Lint: imports point the way DESIGN.md says, so the layering cannot rot.

    spec         -> standard library, attrs
    models       -> standard library, attrs, spec
    impl         -> standard library, third-party, spec, etcdpb
    impl/cli.py  -> also models, conformance, benchmarks (it is the composition root)
    conformance  -> standard library, third-party, spec, models, etcdpb; never impl
    etcdpb       -> generated protobuf code: protobuf, grpc, etcdpb
    benchmarks   -> anything but tests
    tools        -> standard library

Run as a script (exit status 1 on any violation) or call `find_violations(root)`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_PACKAGES = frozenset(
    {"spec", "models", "impl", "conformance", "etcdpb", "benchmarks", "tools", "tests"}
)
STANDARD_LIBRARY = frozenset(sys.stdlib_module_names) | {"__future__"}
THIRD_PARTY = "<third-party>"

# For each package, the top-level names it may import (THIRD_PARTY stands for any
# module that is neither standard library nor one of the project's packages).
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "spec": frozenset({"spec", "attrs", "attr"}),
    "models": frozenset({"models", "spec", "attrs", "attr"}),
    "impl": frozenset({"impl", "spec", "etcdpb", THIRD_PARTY}),
    "conformance": frozenset({"conformance", "spec", "models", "etcdpb", THIRD_PARTY}),
    "etcdpb": frozenset({"etcdpb", "google", "grpc"}),
    "benchmarks": frozenset(
        {"benchmarks", "spec", "models", "impl", "conformance", "etcdpb", THIRD_PARTY}
    ),
    "tools": frozenset({"tools"}),
}
# The command-line entry point wires every layer together.
COMPOSITION_ROOTS: dict[str, frozenset[str]] = {
    "impl/cli.py": ALLOWED_IMPORTS["impl"] | {"models", "conformance", "benchmarks"},
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: may not import {self.imported!r}"


def imported_top_level_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Yield (line, top-level module) for every absolute import in a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def classify(name: str) -> str:
    """Return the name itself for stdlib or project modules, THIRD_PARTY otherwise."""
    if name in STANDARD_LIBRARY or name in PROJECT_PACKAGES:
        return name
    return THIRD_PARTY


def find_violations(root: Path) -> list[Violation]:
    """Every import under `root` that goes against ALLOWED_IMPORTS."""
    violations: list[Violation] = []
    for package, allowed_for_package in ALLOWED_IMPORTS.items():
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            allowed = COMPOSITION_ROOTS.get(relative, allowed_for_package)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            for line, name in imported_top_level_names(tree):
                if name in allowed or classify(name) in allowed:
                    continue
                if name in STANDARD_LIBRARY and name not in PROJECT_PACKAGES:
                    continue
                violations.append(Violation(relative, line, name))
    return violations


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    violations = find_violations(root)
    for violation in violations:
        print(violation, file=sys.stderr)
    if violations:
        print(f"{len(violations)} import(s) against the layering in DESIGN.md", file=sys.stderr)
        return 1
    print("imports point the right way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
