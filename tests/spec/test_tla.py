"""The TLA+ mirror of spec/raft (spec/tla) parses, uses only names it defines, and stays in step with the Python.

`tla.parse` (the `tla` package) checks syntax only: it accepts undefined names, use before
definition and shadowing, all of which SANY and TLC reject. So this test also resolves every
name in each module itself, with TLA+'s scoping rules. The correspondence table in
spec/tla/README.md is read as data: every TLA+ operator it names must be defined in Raft.tla,
and every Python function it names must exist in the file it names, so a rename on either side
fails here. Negative cases show each check catches the mistake it is for.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tla

ROOT = Path(__file__).resolve().parents[2]
TLA_DIRECTORY = ROOT / "spec" / "tla"
RAFT_TLA = TLA_DIRECTORY / "Raft.tla"
README = TLA_DIRECTORY / "README.md"
MC_CFG = TLA_DIRECTORY / "MCRaft.cfg"

# Names the standard modules used here define (Naturals, Integers, Sequences, FiniteSets, Bags, TLC)
# and the built-in words that the parser reports as operator applications.
STANDARD_NAMES = frozenset(
    {
        "Nat", "Int",
        "Seq", "Len", "Append", "Head", "Tail", "SubSeq", "SelectSeq",
        "IsFiniteSet", "Cardinality",
        "IsABag", "BagToSet", "SetToBag", "BagIn", "EmptyBag", "CopiesIn", "BagCardinality",
        "BagOfAll", "BagUnion", "SubBag",
        "Print", "PrintT", "Assert", "JavaTime", "Permutations", "SortSeq", "RandomElement",
        "Any", "ToString", "TLCEval", "TLCGet", "TLCSet",
        "TRUE", "FALSE", "BOOLEAN", "STRING", "UNCHANGED", "DOMAIN", "SUBSET", "UNION",
        "ENABLED",
    }
)  # fmt: skip
STANDARD_MODULES = frozenset({"Naturals", "Integers", "Sequences", "FiniteSets", "Bags", "TLC"})

# Operators the task requires to be mirrored; the README table may not lose any of them.
REQUIRED_OPERATORS = frozenset(
    {
        "OnElectionTimeout", "Campaign", "BecomeFollower", "BecomePreCandidate",
        "BecomeCandidate", "BecomeLeader", "OnVoteRequest", "OnVoteResponse", "SendAppend",
        "SendSnapshot", "OnAppendRequest", "OnAppendResponse", "AdvanceCommit",
        "BroadcastHeartbeat", "OnHeartbeatRequest", "OnHeartbeatResponse", "OnSnapshotRequest",
        "OnPropose", "OnProposeConfigurationChange", "OnTransferLeadership", "OnTimeoutNow",
        "OnRequestRead", "LeaderRead", "OnReadIndexRequest", "OnReadIndexResponse",
        "OnStorageAcknowledged", "OnCompactLog", "Restart", "Crash", "DeliverMessage",
        "DropMessage", "DuplicateMessage", "FindConflictByTerm", "MergeAfter", "MembershipAt",
        "InLeaderLease", "OnStaleTermMessage", "ElectionSafety", "LeaderAppendOnly",
        "LogMatching", "LeaderCompleteness", "StateMachineSafety", "CommittedOnQuorum",
        "MonotonicTerms", "VoteOncePerTerm", "ReadsSeeEarlierCommits",
        "TermsStartWithACandidate",
    }
)  # fmt: skip

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE_ROW = re.compile(r"^\|\s*`(\w+)`\s*\|\s*`([\w.]+)`\s*\|\s*`([\w/]+\.py)`\s*\|\s*$")


# --- Parsing -------------------------------------------------------------------------------------


def parse(text: str) -> Any:
    """The module `text` parses to; ValueError (with the parser's own report) when it does not."""
    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise):
            return tla.parse(text)
    except Exception as error:  # the parser raises ValueError, and on some inputs other errors
        raise ValueError(f"{error}\n{noise.getvalue()[-2000:]}") from error


def tla_files() -> list[Path]:
    return sorted(TLA_DIRECTORY.glob("*.tla"))


# --- Name resolution (a small part of what SANY checks) -------------------------------------------


def node_fields(node: Any) -> Iterator[Any]:
    for field in getattr(node, "_fields", ()):
        if field not in ("symbol", "start", "end"):
            yield getattr(node, field)


def bound_names(declaration: Any) -> list[str]:
    """The names a binder introduces: `x`, `x \\in S`, `<<x, y>> \\in S`."""
    if type(declaration).__name__ == "Tuple":
        return [name for item in declaration.items for name in bound_names(item)]
    if type(declaration).__name__ == "OperatorApplication":
        if declaration.operator == "\\in":
            return bound_names(declaration.arguments[0])
        return [declaration.operator]
    return []


def binder_sets(declaration: Any) -> list[Any]:
    """The bounding set expressions of a binder (resolved in the enclosing scope)."""
    if type(declaration).__name__ == "OperatorApplication" and declaration.operator == "\\in":
        return [declaration.arguments[1]]
    return []


class Resolver:
    """Walks a module as SANY would: top-level names are visible only after their definition
    (or a RECURSIVE declaration), bound names only in their scope, and no name may be defined twice.
    """

    def __init__(self, inherited: frozenset[str]) -> None:
        self.defined: set[str] = set(inherited)
        self.recursive: set[str] = set()
        self.arity: dict[str, int] = {}  # top-level operators: how many arguments they take
        self.problems: list[str] = []

    def define(self, name: str, where: str) -> None:
        if name in self.defined and name not in self.recursive:
            self.problems.append(f"{where}: {name} is defined twice")
        self.defined.add(name)
        self.recursive.discard(name)

    def bind(self, names: list[str], scope: frozenset[str], where: str) -> frozenset[str]:
        for name in names:
            if name in scope or name in self.defined or name in self.recursive:
                self.problems.append(f"{where}: bound name {name} shadows a defined name")
        return scope | frozenset(names)

    def visible(self, name: str, scope: frozenset[str]) -> bool:
        return (
            name in scope
            or name in self.defined
            or name in self.recursive
            or name in STANDARD_NAMES
        )

    def module(self, module: Any) -> list[str]:
        for extended in module.extendees or []:
            name = extended.operator
            if name in STANDARD_MODULES:
                continue
            path = TLA_DIRECTORY / f"{name}.tla"
            if not path.exists():
                self.problems.append(f"EXTENDS {name}: no such module")
                continue
            extended_module = parse(path.read_text())
            self.defined |= top_level_names(extended_module)
            self.arity |= top_level_arity(extended_module)
        for unit in module.units:
            self.unit(unit)
        return self.problems

    def unit(self, unit: Any) -> None:
        kind = type(unit).__name__
        if kind in ("Constants", "Variables"):
            for name in unit.names:
                self.define(name.operator, kind)
        elif kind == "RecursiveOperators":
            for name in unit.names:
                self.recursive.add(name.operator)
                self.arity[name.operator] = len(name.arguments or [])
        elif kind == "OperatorDefinition":
            self.definition(unit, frozenset(), top_level=True)
        else:  # ASSUME, THEOREM, separators
            for child in node_fields(unit):
                self.expression(child, frozenset(), kind)

    def definition(self, unit: Any, scope: frozenset[str], top_level: bool) -> None:
        where = unit.name
        parameters = [parameter.operator for parameter in unit.arity or []]
        if unit.function:  # f[x \in S] == ...
            parameters = []
        inner = self.bind(parameters, scope, where)
        if top_level:
            self.arity[unit.name] = len(parameters)
            self.expression(unit.definiens, inner, where)
            self.define(unit.name, where)
        else:
            if unit.name in scope or unit.name in self.defined:
                self.problems.append(f"{where}: LET name {unit.name} shadows a defined name")
            self.expression(unit.definiens, inner, where)

    def expression(self, node: Any, scope: frozenset[str], where: str) -> None:
        if isinstance(node, list | tuple) and not hasattr(node, "_fields"):
            for item in node:  # (syntax nodes are named tuples: not these)
                self.expression(item, scope, where)
            return
        if not hasattr(node, "_fields"):
            return  # field names, '@', '_', literal text
        kind = type(node).__name__
        if kind == "OperatorApplication":
            name = node.operator
            if IDENTIFIER.match(name) and not self.visible(name, scope):
                self.problems.append(f"{where}: {name} is not defined (or not yet)")
            arguments = len(node.arguments or [])
            if name not in scope and self.arity.get(name, arguments) != arguments:
                self.problems.append(
                    f"{where}: {name} takes {self.arity[name]} arguments, given {arguments}"
                )
            self.expression(node.arguments or [], scope, where)
        elif kind in ("Quantification", "SetComprehension", "Function", "Choose", "SetSlice"):
            declarations = getattr(node, "declarations", None) or node.declaration
            if not isinstance(declarations, list):
                declarations = [declarations]
            names: list[str] = []
            for declaration in declarations:
                self.expression(binder_sets(declaration), scope, where)
                names += bound_names(declaration)
            inner = self.bind(names, scope, where)
            for field in ("predicate", "item", "value"):
                if hasattr(node, field):
                    self.expression(getattr(node, field), inner, where)
        elif kind == "Lambda":
            inner = self.bind([p.operator for p in node.parameters], scope, where)
            self.expression(node.expression, inner, where)
        elif kind == "Let":
            inner = scope
            for definition in node.definitions:
                self.definition(definition, inner, top_level=False)
                inner = inner | {definition.name}
            self.expression(node.expression, inner, where)
        elif kind == "Field":
            self.expression(node.expression, scope, where)
        elif kind == "Record":
            self.expression([value for _, value in node.key_values], scope, where)
        else:
            for child in node_fields(node):
                self.expression(child, scope, where)


def top_level_names(module: Any) -> frozenset[str]:
    names: set[str] = set()
    for unit in module.units:
        kind = type(unit).__name__
        if kind == "OperatorDefinition":
            names.add(unit.name)
        elif kind in ("Constants", "Variables"):
            names |= {name.operator for name in unit.names}
    return frozenset(names)


def top_level_arity(module: Any) -> dict[str, int]:
    return {
        unit.name: 0 if unit.function else len(unit.arity or [])
        for unit in module.units
        if type(unit).__name__ == "OperatorDefinition"
    }


def name_problems(text: str) -> list[str]:
    return Resolver(frozenset()).module(parse(text))


# --- The correspondence table --------------------------------------------------------------------


def correspondence(readme: str) -> list[tuple[str, str, str]]:
    """(TLA+ operator, Python name, file) for every row of README.md's correspondence table."""
    rows = []
    for line in readme.splitlines():
        match = TABLE_ROW.match(line.strip())
        if match is not None:
            rows.append((match.group(1), match.group(2), match.group(3)))
    return rows


def missing_operators(rows: list[tuple[str, str, str]], raft_text: str) -> list[str]:
    defined = top_level_names(parse(raft_text))
    return [operator for operator, _, _ in rows if operator not in defined]


def missing_python(rows: list[tuple[str, str, str]]) -> list[str]:
    """Rows whose Python name is not an attribute of the module in the named file."""
    problems = []
    for _, python_name, file in rows:
        if not (ROOT / file).exists():
            problems.append(f"{file}: no such file")
            continue
        module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
        target: object = module
        for part in python_name.split("."):
            if not hasattr(target, part):
                problems.append(f"{file}: no {python_name}")
                break
            target = getattr(target, part)
    return problems


# --- Positive checks -----------------------------------------------------------------------------


def test_there_are_tla_modules() -> None:
    assert {path.name for path in tla_files()} >= {"Raft.tla", "MCRaft.tla"}


@pytest.mark.parametrize("path", tla_files(), ids=lambda path: path.name)
def test_module_parses(path: Path) -> None:
    module = parse(path.read_text())
    assert module.name == path.stem


@pytest.mark.parametrize("path", tla_files(), ids=lambda path: path.name)
def test_module_defines_every_name_before_use_and_shadows_none(path: Path) -> None:
    assert name_problems(path.read_text()) == []


def test_table_covers_the_required_operators() -> None:
    rows = correspondence(README.read_text())
    assert len(rows) >= len(REQUIRED_OPERATORS)
    assert REQUIRED_OPERATORS - {operator for operator, _, _ in rows} == set()
    assert len({operator for operator, _, _ in rows}) == len(rows), "one row per operator"


def test_every_tla_operator_in_the_table_is_defined_in_raft_tla() -> None:
    rows = correspondence(README.read_text())
    assert missing_operators(rows, RAFT_TLA.read_text()) == []


def test_every_python_name_in_the_table_exists_in_its_file() -> None:
    assert missing_python(correspondence(README.read_text())) == []


def cfg_sections(text: str) -> dict[str, list[str]]:
    """The names listed under each keyword of a TLC .cfg (constants as `Name = value` lines)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.split("\\*")[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0].isupper() and IDENTIFIER.match(words[0]):
            current = words[0]
            sections.setdefault(current, [])
            words = words[1:]
        if current.startswith("CONSTANT") and words:
            sections[current].append(words[0])
        elif current:
            sections[current] += words
    return sections


def test_tlc_configuration_names_exist_and_assigns_every_constant() -> None:
    sections = cfg_sections(MC_CFG.read_text())
    mc = parse((TLA_DIRECTORY / "MCRaft.tla").read_text())
    raft = parse(RAFT_TLA.read_text())
    defined = top_level_names(mc) | top_level_names(raft)
    named = [
        name
        for keyword in (
            "SPECIFICATION",
            "CONSTRAINT",
            "SYMMETRY",
            "VIEW",
            "INVARIANTS",
            "PROPERTIES",
        )
        for name in sections.get(keyword, [])
    ]
    assert named and [name for name in named if name not in defined] == []
    constants = {
        name.operator
        for module in (mc, raft)
        for unit in module.units
        if type(unit).__name__ == "Constants"
        for name in unit.names
    }
    assert set(sections.get("CONSTANTS", [])) == constants
    assert {"ElectionSafety", "LogMatching", "LeaderCompleteness", "StateMachineSafety"} <= set(
        sections["INVARIANTS"]
    )


# --- Negative checks: each check fails on a broken variant ---------------------------------------


def renamed_definition(text: str, name: str) -> str:
    """`text` with the definition of `name` (not its uses) renamed."""
    broken, count = re.subn(rf"^{name}\(", f"{name}Renamed(", text, count=1, flags=re.MULTILINE)
    assert count == 1
    return broken


@pytest.mark.parametrize("operator", ["OnVoteRequest", "MergeAfter", "AdvanceCommit"])
def test_renaming_a_tla_operator_breaks_the_correspondence(operator: str) -> None:
    rows = correspondence(README.read_text())
    broken = renamed_definition(RAFT_TLA.read_text(), operator)
    assert missing_operators(rows, broken) == [operator]
    # Its callers now use an undefined name too.
    assert any(f"{operator} is not defined" in problem for problem in name_problems(broken))


@pytest.mark.parametrize(
    "row",
    [
        ("OnVoteRequest", "on_vote_request_renamed", "spec/raft/election.py"),
        ("FindConflictByTerm", "Log.find_conflicts_by_term", "spec/raft/log.py"),
        ("OnVoteRequest", "on_vote_request", "spec/raft/voting.py"),
    ],
)
def test_a_missing_python_name_breaks_the_correspondence(row: tuple[str, str, str]) -> None:
    assert len(missing_python([row])) == 1


@pytest.mark.parametrize(
    ("description", "old", "new"),
    [
        (
            "unbalanced bracket",
            "[s EXCEPT !.log = Append(@, entry)]",
            "[s EXCEPT !.log = Append(@, entry)",
        ),
        ("missing THEN", "IF peers = {} THEN Result", "IF peers = {} Result"),
        ("EXCEPT without !", "[s EXCEPT !.vote = m.sender", "[s EXCEPT .vote = m.sender"),
        (
            "LET without IN",
            "    IN Result(rest.state, Then(first.output, rest.output))\n\nBroadcastAppend(",
            "    Result(rest.state, Then(first.output, rest.output))\n\nBroadcastAppend(",
        ),
    ],
)
def test_a_syntax_error_fails_to_parse(description: str, old: str, new: str) -> None:
    text = RAFT_TLA.read_text()
    assert old in text, description
    with pytest.raises(ValueError):
        parse(text.replace(old, new, 1))


MODULE = "---- MODULE Broken ----\nEXTENDS Naturals, Sequences\n{body}\n====\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("A == B + 1", "B is not defined"),
        ("A == B + 1\nB == 2", "B is not defined"),  # used before its definition
        ("F(x) == \\E x \\in {1} : x > 0", "bound name x shadows"),
        ("G == 1\nF(G) == G", "bound name G shadows"),
        ("F(y) == LET y == 1 IN y", "LET name y shadows"),
        ("A == 1\nA == 2", "A is defined twice"),
        ("F(n) == IF n = 0 THEN 0 ELSE F(n - 1)", "F is not defined"),  # needs RECURSIVE
        ("F(a, b) == a + b\nG == F(1)", "F takes 2 arguments, given 1"),
        ("F == 1\nG == F(1)", "F takes 0 arguments, given 1"),
    ],
)
def test_name_resolution_catches_what_the_parser_accepts(body: str, problem: str) -> None:
    text = MODULE.format(body=body)
    parse(text)  # the parser alone accepts it
    problems = name_problems(text)
    assert any(problem in found for found in problems), problems


def test_name_resolution_accepts_recursion_let_and_binders() -> None:
    body = (
        "RECURSIVE F(_)\nF(n) == IF n = 0 THEN 0 ELSE F(n - 1)\n"
        "G(s) == LET a == 1 b(c) == c + a IN {b(x) : x \\in s} \\cup {y \\in s : y > a}\n"
        "H(f) == [f EXCEPT ![1] = @ + 1] = [k \\in {1} |-> CHOOSE z \\in {k} : TRUE]\n"
        "K == \\A <<p, q>> \\in {1} \\X {2} : SelectSeq(<<p>>, LAMBDA w : w > q) = <<>>"
    )
    assert name_problems(MODULE.format(body=body)) == []
