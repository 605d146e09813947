"""The TLA+ mirror of spec/raft (spec/tla) parses, uses only names it defines, and stays in step with the Python.

`tla.parse` (the `tla` package) checks syntax only: it accepts undefined names, use before
definition and shadowing, all of which SANY and TLC reject. So this test also resolves every
name in each module itself, with TLA+'s scoping rules. The correspondence table in
spec/tla/README.md is read as data: every TLA+ operator it names must be defined in Raft.tla,
and every Python function it names must exist in the file it names, so a rename on either side
fails here. Beyond names, a small evaluator for the TLA+ that Raft.tla uses runs its `Step` on
the node states and inputs of random runs of models/cluster.py and compares the answer with the
Python `step`, and evaluates its invariants on those cluster states against models/invariants.py.
Negative cases show each check catches the mistake it is for.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import tla

from models import cluster as model
from models import invariants
from spec.raft.io import (
    Applied,
    CompactLog,
    ElectionTimeout,
    HeartbeatTimeout,
    Input,
    Output,
    Propose,
    ProposeBatch,
    ProposeConfigurationChange,
    Receive,
    RequestRead,
    StorageAcknowledged,
    TransferLeadership,
)
from spec.raft.log import Snapshot
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from spec.raft.state import NodeState, Progress, restart
from spec.raft.step import step
from spec.raft.types import (
    ChangeAction,
    ConfigurationChange,
    Entry,
    EntryKind,
    LogIndex,
    Membership,
    NodeId,
    Settings,
    Term,
)

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


# --- Evaluating Raft.tla against the Python ------------------------------------------------------
#
# A small evaluator for the part of TLA+ that Raft.tla's pure operators use, so that `Step` can be
# run on the very states and inputs the Python `step` sees, and the two answers compared. Values:
# int, bool, str, NIL (the model value Nil), frozenset (sets), tuple (sequences, and the empty
# function), Fn (records and other functions, bags included).


class ModelValue:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NIL = ModelValue("Nil")


class Fn:
    """An immutable function (or record): hashable, equal by its mapping."""

    __slots__ = ("hash", "mapping")

    def __init__(self, mapping: dict[Any, Any]) -> None:
        self.mapping = mapping
        self.hash = hash(frozenset(mapping.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fn) and self.mapping == other.mapping

    def __hash__(self) -> int:
        return self.hash

    def __repr__(self) -> str:
        return f"Fn({self.mapping!r})"


def function(mapping: dict[Any, Any]) -> Any:
    """A function value; one whose domain is 1..n is a sequence (a tuple), as in TLA+."""
    if not mapping:
        return ()
    if all(type(key) is int for key in mapping) and set(mapping) == set(range(1, len(mapping) + 1)):
        return tuple(mapping[key] for key in range(1, len(mapping) + 1))
    return Fn(mapping)


def as_mapping(value: Any) -> dict[Any, Any]:
    if isinstance(value, Fn):
        return value.mapping
    if isinstance(value, tuple):
        return {index + 1: item for index, item in enumerate(value)}
    raise TypeError(f"not a function: {value!r}")


class Thunk:
    """A lazily evaluated expression: LET definitions and arguments are evaluated only if used."""

    __slots__ = ("done", "env", "evaluator", "node", "value")

    def __init__(self, evaluator: Evaluator, node: Any, env: dict[str, Any]) -> None:
        self.evaluator, self.node, self.env = evaluator, node, env
        self.done = False
        self.value: Any = None

    def force(self) -> Any:
        if not self.done:
            self.value = self.evaluator.eval(self.node, self.env)
            self.done = True
        return self.value


class Closure:
    """An operator with parameters (a LET operator, a LAMBDA, or a top-level definition)."""

    def __init__(self, parameters: list[str], body: Any, env: dict[str, Any]) -> None:
        self.parameters, self.body, self.env = parameters, body, env


def forced(value: Any) -> Any:
    return value.force() if isinstance(value, Thunk) else value


def bag_add(first: Any, second: Any) -> Any:
    counts = dict(as_mapping(first))
    for key, count in as_mapping(second).items():
        counts[key] = counts.get(key, 0) + count
    return function(counts)


def bag_subtract(first: Any, second: Any) -> Any:
    counts = dict(as_mapping(first))
    for key, count in as_mapping(second).items():
        counts[key] = counts.get(key, 0) - count
    return function({key: count for key, count in counts.items() if count > 0})


BINARY: dict[str, Any] = {
    "=": lambda a, b: a == b,
    "#": lambda a, b: a != b,
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "\\div": lambda a, b: a // b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "\\in": lambda a, b: a in b,
    "\\notin": lambda a, b: a not in b,
    "\\cup": lambda a, b: a | b,
    "\\cap": lambda a, b: a & b,
    "\\": lambda a, b: a - b,
    "\\subseteq": lambda a, b: a <= b,
    "..": lambda a, b: frozenset(range(a, b + 1)),
    "\\o": lambda a, b: a + b,
    ":>": lambda a, b: function({a: b}),
    "@@": lambda a, b: function({**as_mapping(b), **as_mapping(a)}),
    "(+)": bag_add,
    "(-)": bag_subtract,
}

BUILTIN: dict[str, Any] = {
    "Len": len,
    "Append": lambda s, e: (*s, e),
    "Head": lambda s: s[0],
    "Tail": lambda s: s[1:],
    "SubSeq": lambda s, m, n: tuple(s[m - 1 : n]) if m <= n else (),
    "Cardinality": len,
    "SetToBag": lambda s: function(dict.fromkeys(s, 1)),
    "BagToSet": lambda b: frozenset(as_mapping(b)),
    "CopiesIn": lambda e, b: as_mapping(b).get(e, 0),
    "BagCardinality": lambda b: sum(as_mapping(b).values()),
}


class Evaluator:
    def __init__(self, module: Any, constants: dict[str, Any]) -> None:
        self.definitions = {
            unit.name: unit for unit in module.units if type(unit).__name__ == "OperatorDefinition"
        }
        self.constants = constants

    def call(self, name: str, *arguments: Any) -> Any:
        definition = self.definitions[name]
        parameters = [parameter.operator for parameter in definition.arity or []]
        return self.eval(definition.definiens, dict(zip(parameters, arguments, strict=True)))

    def apply(self, operator: Any, arguments: list[Any]) -> Any:
        if isinstance(operator, Closure):
            env = {**operator.env, **dict(zip(operator.parameters, arguments, strict=True))}
            return self.eval(operator.body, env)
        raise TypeError(f"cannot apply {operator!r}")

    def operator_application(self, node: Any, env: dict[str, Any]) -> Any:
        name, arguments = node.operator, node.arguments or []
        if name == "/\\":
            return all(self.eval(argument, env) for argument in arguments)
        if name == "\\/":
            return any(self.eval(argument, env) for argument in arguments)
        if name == "=>":
            return not self.eval(arguments[0], env) or self.eval(arguments[1], env)
        if name == "~":
            return not self.eval(arguments[0], env)
        if name == "-" and len(arguments) == 1:
            return -self.eval(arguments[0], env)
        if name in BINARY:
            return BINARY[name](self.eval(arguments[0], env), self.eval(arguments[1], env))
        if name in env:
            value = forced(env[name])
            if arguments:
                return self.apply(value, [Thunk(self, argument, env) for argument in arguments])
            return value
        if name in self.constants:
            return self.constants[name]
        if name in ("TRUE", "FALSE"):
            return name == "TRUE"
        if name == "EmptyBag":
            return ()
        if name == "DOMAIN":
            return frozenset(as_mapping(self.eval(arguments[0], env)))
        if name == "SelectSeq":
            sequence = self.eval(arguments[0], env)
            test = self.eval(arguments[1], env)
            return tuple(item for item in sequence if self.apply(test, [item]))
        if name in BUILTIN:
            return BUILTIN[name](*(self.eval(argument, env) for argument in arguments))
        if name in self.definitions:
            definition = self.definitions[name]
            parameters = [parameter.operator for parameter in definition.arity or []]
            local = {
                parameter: Thunk(self, argument, env)
                for parameter, argument in zip(parameters, arguments, strict=True)
            }
            return self.eval(definition.definiens, local)
        raise NameError(name)

    def bindings(self, declarations: list[Any], env: dict[str, Any]) -> list[dict[str, Any]]:
        """Every assignment of the bound names of `declarations` (each `x \\in S` or `<<x, y>> \\in S`)."""
        results: list[dict[str, Any]] = [{}]
        pending: list[str] = []
        for declaration in declarations:
            if declaration.operator != "\\in":
                pending.append(declaration.operator)  # `\A a, b \in S`: a shares b's set
                continue
            target, domain = declaration.arguments
            values = self.eval(domain, env)
            names = [*pending, target]
            pending = []
            extended = []
            for partial in results:
                combos: list[dict[str, Any]] = [partial]
                for name in names:
                    combos = [
                        {**combo, **self.bind(name, value)} for combo in combos for value in values
                    ]
                extended += combos
            results = extended
        return results

    def bind(self, target: Any, value: Any) -> dict[str, Any]:
        if isinstance(target, str):
            return {target: value}
        if type(target).__name__ == "Tuple":
            bound: dict[str, Any] = {}
            for item, part in zip(target.items, value, strict=True):
                bound |= self.bind(item, part)
            return bound
        return {target.operator: value}

    def eval(self, node: Any, env: dict[str, Any]) -> Any:
        if isinstance(node, str):
            if node == "@":
                return forced(env["@"])
            raise TypeError(node)
        kind = type(node).__name__
        if kind == "OperatorApplication":
            return self.operator_application(node, env)
        if kind == "IntegralNumeral":
            return int(node.value)
        if kind == "StringLiteral":
            return str(node.value[1:-1])
        if kind == "BooleanLiteral":
            return node.value == "TRUE"
        if kind == "Parentheses":
            return self.eval(node.expression, env)
        if kind == "VerticalList":
            items = (item.expression for item in node.arguments)
            if node.operator == "/\\":
                return all(self.eval(item, env) for item in items)
            return any(self.eval(item, env) for item in items)
        if kind == "If":
            branch = node.then if self.eval(node.predicate, env) else node.else_
            return self.eval(branch, env)
        if kind == "Cases":
            for case in node.cases:
                if self.eval(case.predicate, env):
                    return self.eval(case.expression, env)
            if node.other is None:
                raise ValueError("no CASE arm applies")
            return self.eval(node.other, env)
        if kind == "Let":
            local = dict(env)
            for definition in node.definitions:
                parameters = [parameter.operator for parameter in definition.arity or []]
                if parameters:
                    local[definition.name] = Closure(parameters, definition.definiens, local)
                else:
                    local[definition.name] = Thunk(self, definition.definiens, local)
            return self.eval(node.expression, local)
        if kind == "Lambda":
            return Closure([p.operator for p in node.parameters], node.expression, env)
        if kind == "Tuple":
            return tuple(self.eval(item, env) for item in node.items)
        if kind == "SetEnumeration":
            return frozenset(self.eval(item, env) for item in node.items)
        if kind == "Record":
            return Fn({key: self.eval(value, env) for key, value in node.key_values})
        if kind == "Field":
            return as_mapping(self.eval(node.expression, env))[node.name]
        if kind == "FunctionApplication":
            target = self.eval(node.function, env)
            (argument,) = [self.eval(argument, env) for argument in node.arguments]
            return as_mapping(target)[argument]
        if kind in ("Quantification", "SetSlice", "SetComprehension", "Function", "Choose"):
            declarations = getattr(node, "declarations", None) or node.declaration
            if not isinstance(declarations, list):
                declarations = [declarations]
            assignments = self.bindings(declarations, env)
            if kind == "Quantification":
                test = all if node.quantifier == "\\A" else any
                return test(self.eval(node.predicate, {**env, **a}) for a in assignments)
            if kind == "SetComprehension":
                return frozenset(self.eval(node.item, {**env, **a}) for a in assignments)
            if kind == "Function":
                return function(
                    {
                        next(iter(a.values())): self.eval(node.value, {**env, **a})
                        for a in assignments
                    }
                )
            chosen = [a for a in assignments if self.eval(node.predicate, {**env, **a})]
            if kind == "SetSlice":
                return frozenset(next(iter(a.values())) for a in chosen)
            if not chosen:
                raise ValueError("CHOOSE from an empty set")
            return next(iter(chosen[0].values()))
        if kind == "Except":
            value = self.eval(node.function, env)
            for change in node.changes:
                value = self.except_path(value, change.item, change.expression, env)
            return value
        raise NotImplementedError(kind)

    def except_path(self, value: Any, path: list[Any], expression: Any, env: dict[str, Any]) -> Any:
        step, rest = path[0], path[1:]
        key = step if isinstance(step, str) else self.eval(step[0], env)
        mapping = dict(as_mapping(value))
        assert key in mapping, f"EXCEPT outside the domain: {key!r}"
        if rest:
            mapping[key] = self.except_path(mapping[key], rest, expression, env)
        else:
            mapping[key] = self.eval(expression, {**env, "@": mapping[key]})
        return function(mapping) if isinstance(value, tuple) else Fn(mapping)


# Python values as the TLA+ values Raft.tla uses.


def tla_id(node: int | None) -> Any:
    return NIL if node is None else node


def tla_membership(membership: Membership) -> Fn:
    return Fn({"voters": frozenset(membership.voters), "learners": frozenset(membership.learners)})


def tla_entry(entry: Entry) -> Fn:
    if entry.kind is EntryKind.CONFIGURATION:
        change = ConfigurationChange.decode(entry.data)
        assert change is not None
        encoded = Fn({"action": change.action.value, "node": change.node})
        return Fn({"term": entry.term, "kind": "configuration", "value": NIL, "change": encoded})
    value = NIL if entry.data == b"" else entry.data.decode()
    return Fn({"term": entry.term, "kind": "normal", "value": value, "change": NIL})


def tla_snapshot(snapshot: Snapshot) -> Fn:
    return Fn(
        {
            "index": snapshot.index,
            "term": snapshot.term,
            "membership": tla_membership(snapshot.membership),
        }
    )


def tla_progress(progress: Progress) -> Fn:
    return Fn(
        {
            "match": progress.match_index,
            "next": progress.next_index,
            "mode": progress.mode.value,
            "probeSent": progress.probe_sent,
            "inflight": tuple(progress.inflight),
            "pendingSnapshot": progress.pending_snapshot_index,
            "recentlyActive": progress.recently_active,
        }
    )


def tla_node(state: NodeState) -> Fn:
    leader = state.leader_state
    return Fn(
        {
            "id": state.node_id,
            "term": state.term,
            "vote": tla_id(state.vote),
            "snapshot": tla_snapshot(state.log.snapshot),
            "log": tuple(tla_entry(entry) for entry in state.log.entries),
            "commitIndex": state.commit_index,
            "role": state.role.value,
            "leader": tla_id(state.leader),
            "membership": tla_membership(state.membership),
            "durableIndex": state.durable_index,
            "emittedIndex": state.emitted_index,
            "appliedIndex": state.applied_index,
            "electionElapsed": state.election_elapsed_ticks >= state.settings.election_ticks,
            "votes": function(dict(state.votes)),
            "progress": function(
                {peer: tla_progress(p) for peer, p in leader.progress.items()} if leader else {}
            ),
            "reads": tuple(
                Fn(
                    {
                        "context": read.context,
                        "index": read.index,
                        "requester": read.requester,
                        "acknowledgedBy": frozenset(read.acknowledged_by),
                    }
                )
                for read in (leader.reads if leader else ())
            ),
            "readsAwaitingCommit": tuple(
                Fn({"context": context, "requester": requester})
                for context, requester in (leader.reads_awaiting_commit if leader else ())
            ),
            "transferTarget": tla_id(leader.transfer_target if leader else None),
        }
    )


def tla_message(message: Message) -> Fn:
    fields: dict[str, Any] = {
        "type": type(message).__name__,
        "sender": message.sender,
        "recipient": message.recipient,
        "term": message.term,
    }
    match message:
        case VoteRequest():
            fields |= {
                "lastLogIndex": message.last_log_index,
                "lastLogTerm": message.last_log_term,
                "preVote": message.pre_vote,
                "transfer": message.transfer,
            }
        case VoteResponse():
            fields |= {"granted": message.granted, "preVote": message.pre_vote}
        case AppendRequest():
            fields |= {
                "previousIndex": message.previous_index,
                "previousTerm": message.previous_term,
                "entries": tuple(tla_entry(entry) for entry in message.entries),
                "commit": message.commit,
            }
        case AppendResponse():
            fields |= {
                "index": message.index,
                "rejected": message.rejected,
                "hintIndex": message.hint_index,
                "hintTerm": message.hint_term,
            }
        case HeartbeatRequest():
            fields |= {"commit": message.commit, "readContext": tla_id_or(message.read_context)}
        case HeartbeatResponse():
            fields |= {"readContext": tla_id_or(message.read_context)}
        case SnapshotRequest():
            fields |= {"snapshot": tla_snapshot(message.snapshot)}
        case ReadIndexRequest():
            fields |= {"context": message.context}
        case ReadIndexResponse():
            fields |= {"context": message.context, "index": message.index}
        case TimeoutNow():
            pass
    return Fn(fields)


def tla_id_or(value: bytes | None) -> Any:
    return NIL if value is None else value


def tla_input(event: Input) -> Fn | None:
    """The TLA+ input for a Python one; None for inputs whose time the TLA+ abstracts (Tick)."""
    match event:
        case ElectionTimeout():
            return Fn({"type": "ElectionTimeout"})
        case HeartbeatTimeout():
            return Fn({"type": "HeartbeatTimeout"})
        case Receive(message):
            return Fn({"type": "Receive", "message": tla_message(message)})
        case Propose(data):
            return Fn({"type": "Propose", "data": data.decode()})
        case ProposeBatch(data):
            return Fn({"type": "ProposeBatch", "data": tuple(each.decode() for each in data)})
        case RequestRead(context):
            return Fn({"type": "RequestRead", "context": context})
        case TransferLeadership(target):
            return Fn({"type": "TransferLeadership", "target": target})
        case StorageAcknowledged(index, term):
            return Fn({"type": "StorageAcknowledged", "index": index, "term": term})
        case Applied(index):
            return Fn({"type": "Applied", "index": index})
        case CompactLog(index, _):
            return Fn({"type": "CompactLog", "index": index})
        case _:
            return None


def tla_output(output: Output) -> dict[str, Any]:
    messages: dict[Fn, int] = {}
    for outgoing in output.messages:
        key = tla_message(outgoing.message)
        messages[key] = messages.get(key, 0) + 1
    return {
        "msgs": function(messages),
        "reads": frozenset(
            Fn({"context": r.context, "index": r.index}) for r in output.reads_ready
        ),
        "committed": frozenset(
            Fn({"index": entry.index, "entry": tla_entry(entry)})
            for entry in output.committed_entries
        ),
    }


@functools.cache
def raft_module() -> Any:
    return parse(RAFT_TLA.read_text())


def evaluator_for(settings: Settings, text: str | None = None) -> Evaluator:
    return Evaluator(
        raft_module() if text is None else parse(text),
        {
            "Nil": NIL,
            "PreVoteEnabled": settings.pre_vote,
            "CheckQuorumEnabled": settings.check_quorum,
            "EntriesPerMessageMax": settings.entries_per_message_max,
            "InflightAppendsMax": settings.inflight_appends_max,
        },
    )


def step_disagreements(evaluator: Evaluator, state: NodeState, event: Input) -> list[str]:
    """Where TLA+ `Step` and Python `step` disagree on one input (empty when they agree)."""
    encoded = tla_input(event)
    if encoded is None:
        return []
    after, output = step(state, event)
    result = as_mapping(evaluator.call("Step", tla_node(state), encoded))
    expected_state = tla_node(after)
    problems = []
    tla_state = as_mapping(result["state"])
    for field, value in as_mapping(expected_state).items():
        if tla_state[field] != value:
            problems.append(f"{field}: TLA+ {tla_state[field]!r}, Python {value!r}")
    tla_out = as_mapping(result["output"])
    for field, value in tla_output(output).items():
        if tla_out[field] != value:
            problems.append(f"output {field}: TLA+ {tla_out[field]!r}, Python {value!r}")
    return problems


def inputs_for(cluster: model.ClusterState, node: NodeState) -> list[Input]:
    """The inputs the cluster model could give `node` now (as the explorer's actions would)."""
    events: list[Input] = [ElectionTimeout(), HeartbeatTimeout(), Propose(b"v")]
    events += [ProposeBatch((b"v", b"w", b"x")), ProposeBatch(())]
    events += [Receive(m) for m in cluster.network if m.recipient == node.node_id]
    events += [RequestRead(b"r%d" % len(cluster.ghost.reads)), TransferLeadership(NodeId(2))]
    if node.log.last_index > node.durable_index:
        events.append(StorageAcknowledged(node.log.last_index, node.log.last_term))
    if node.applied_index > node.log.snapshot.index:
        events.append(CompactLog(node.applied_index, b""))
    events += [
        ProposeConfigurationChange(ConfigurationChange(action, NodeId(node)))
        for action, node in CHANGES
    ]
    return events


CHANGES = (
    (ChangeAction.REMOVE, 3),
    (ChangeAction.ADD_LEARNER, 4),
    (ChangeAction.ADD_VOTER, 4),
    (ChangeAction.PROMOTE_LEARNER, 4),
)


@pytest.mark.parametrize(
    ("seed", "pre_vote", "check_quorum"),
    [
        (1, False, False),
        (2, True, False),
        (3, False, True),
        (4, True, True),
        (5, True, True),
        (6, False, False),
        (7, True, False),
        (8, False, True),
    ],
)
def test_tla_step_agrees_with_python_step(seed: int, pre_vote: bool, check_quorum: bool) -> None:
    """Along a random run of the cluster model, TLA+ Step and Python step give the same answer
    for every input a node could receive at each point (state, messages, reads, applied entries)."""
    rng = random.Random(seed)
    settings = Settings(
        election_ticks=10, heartbeat_ticks=1, pre_vote=pre_vote, check_quorum=check_quorum,
        inflight_appends_max=2, entries_per_message_max=2,
    )  # fmt: skip
    evaluator = evaluator_for(settings)
    cluster = model.new_cluster(4, settings, seed=seed, voters=3)
    checked = 0
    for _ in range(150):
        for node in cluster.running():
            for event in inputs_for(cluster, node):
                problems = step_disagreements(evaluator, node, event)
                assert problems == [], f"seed {seed}, node {node.node_id}, {event}: {problems}"
                checked += 1
        cluster = random_action(cluster, rng)
    assert checked > 1000


def random_action(cluster: model.ClusterState, rng: random.Random) -> model.ClusterState:
    node_id = NodeId(rng.randint(1, len(cluster.nodes)))
    choice = rng.random()
    if choice < 0.04:
        action, node = rng.choice(CHANGES)
        change = ConfigurationChange(action, NodeId(node))
        return model.change_membership(cluster, node_id, change)
    if choice < 0.06:
        return model.transfer_leadership(cluster, node_id, NodeId(rng.randint(1, 3)))
    if cluster.network and choice < 0.6:
        position = rng.randrange(len(cluster.network))
        return (model.drop if rng.random() < 0.1 else model.deliver)(cluster, position)
    if choice < 0.7:
        return model.election_timeout(cluster, node_id)
    if choice < 0.8:
        return model.propose(cluster, node_id, b"v")
    if choice < 0.85:
        return model.heartbeat_timeout(cluster, node_id)
    if choice < 0.9:
        return model.request_read(cluster, node_id, b"q%d" % rng.randrange(1000))
    if choice < 0.93:
        return model.compact(cluster, node_id)
    if choice < 0.96:
        return model.recover(model.crash(cluster, node_id), node_id)
    return model.tick_all(cluster)


@pytest.mark.parametrize(
    ("description", "old", "new", "pre_vote"),
    [
        (
            "term+2",
            "!.term = s.term + 1, !.vote = s.id",
            "!.term = s.term + 2, !.vote = s.id",
            False,
        ),
        (
            "prevote-answered-with-own-term",
            "IF granted /\\ m.preVote THEN m.term ELSE next.term",
            "next.term",
            True,
        ),
        (
            "candidate-asks-itself",
            ": voter \\in started.membership.voters \\ {started.id}}",
            ": voter \\in started.membership.voters}",
            False,
        ),
    ],
    ids=["term+2", "prevote-answered-with-own-term", "candidate-asks-itself"],
)
def test_a_mirror_that_drifts_from_the_python_disagrees(
    description: str, old: str, new: str, pre_vote: bool
) -> None:
    """The comparison has teeth: a Raft.tla changed in one place disagrees with the Python
    on the first election (the candidate's own step, then a voter's answer)."""
    text = RAFT_TLA.read_text()
    assert old in text, description
    settings = Settings(pre_vote=pre_vote, check_quorum=False)
    evaluator = evaluator_for(settings, text.replace(old, new, 1))
    cluster = model.new_cluster(3, settings)
    candidate = cluster.nodes[NodeId(1)]
    assert candidate is not None
    problems = step_disagreements(evaluator, candidate, ElectionTimeout())
    cluster = model.election_timeout(cluster, NodeId(1))
    voter = cluster.nodes[NodeId(2)]
    assert voter is not None
    for message in cluster.network:
        if message.recipient == voter.node_id:
            problems += step_disagreements(evaluator, voter, Receive(message))
    assert problems != []


# The invariants of Raft.tla, evaluated on cluster-model states, against models/invariants.py.


def tla_history(ghost: model.Ghost) -> Fn:
    return Fn(
        {
            "leaders": frozenset(
                (term, node) for term, nodes in ghost.leaders.items() for node in nodes
            ),
            "campaigns": frozenset(ghost.campaigns),
            "votes": frozenset((node, term, vote) for (node, term), vote in ghost.votes.items()),
            "committed": frozenset(
                Fn({"index": index, "entry": tla_entry(entry), "term": term})
                for index, (entry, term) in ghost.committed.items()
            ),
            "commitQuorums": frozenset(
                Fn({"index": index, "membership": tla_membership(membership)})
                for index, membership in ghost.commit_quorums
            ),
            "applied": frozenset(
                Fn({"index": index, "entry": tla_entry(entry)})
                for index, entry in ghost.applied.items()
            ),
            "reads": tuple(
                Fn(
                    {
                        "node": read.node,
                        "context": read.context,
                        "committedWhenRequested": read.committed_when_requested,
                        "readIndex": tla_id(read.read_index),
                    }
                )
                for read in ghost.reads
            ),
        }
    )


def tla_cluster_constants(cluster: model.ClusterState) -> dict[str, Any]:
    """The variables of Raft.tla for a cluster-model state (a crashed node shows its durable state)."""
    nodes = {}
    for node_id, node in cluster.nodes.items():
        if node is None:
            stored = cluster.persisted[node_id]
            durable = restart(node_id, stored, cluster.settings, random_seed=0)
            nodes[node_id] = tla_node(durable)
        else:
            nodes[node_id] = tla_node(node)
    return {
        "Server": frozenset(cluster.nodes),
        "nodes": Fn(nodes),
        "running": Fn({node_id: node is not None for node_id, node in cluster.nodes.items()}),
        "history": tla_history(cluster.ghost),
    }


STATE_INVARIANT_TWINS = {
    "ElectionSafety": invariants.election_safety,
    "LogMatching": invariants.log_matching,
    "LeaderCompleteness": invariants.leader_completeness,
    "StateMachineSafety": invariants.state_machine_safety,
    "CommittedOnQuorum": invariants.committed_on_quorum,
    "VoteOncePerTerm": invariants.votes_once_per_term,
    "ReadsSeeEarlierCommits": invariants.reads_see_earlier_commits,
    "TermsStartWithACandidate": invariants.terms_start_with_a_candidate,
    "SingleNodeInvariants": invariants.single_node_invariants,
}


def invariant_disagreements(evaluator: Evaluator, cluster: model.ClusterState) -> list[str]:
    evaluator.constants |= tla_cluster_constants(cluster)
    problems = []
    for name, twin in STATE_INVARIANT_TWINS.items():
        holds_in_tla = evaluator.call(name)
        holds_in_python = twin(cluster) == []
        if holds_in_tla != holds_in_python:
            problems.append(f"{name}: TLA+ {holds_in_tla}, Python {holds_in_python}")
    return problems


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_tla_invariants_agree_with_python_invariants(seed: int) -> None:
    rng = random.Random(seed)
    settings = Settings(pre_vote=seed % 2 == 0, check_quorum=False)
    evaluator = evaluator_for(settings)
    cluster = model.new_cluster(3, settings, seed=seed)
    for _ in range(150):
        assert invariant_disagreements(evaluator, cluster) == []
        cluster = random_action(cluster, rng)


def test_tla_invariants_catch_what_python_invariants_catch() -> None:
    """Doctored histories (two leaders in a term, a read that missed a commit, a term nobody
    started) break the same invariant on both sides."""
    settings = Settings(pre_vote=False, check_quorum=False)
    evaluator = evaluator_for(settings)
    cluster = model.new_cluster(3, settings)
    cluster = model.election_timeout(cluster, NodeId(1))
    cluster = model.deliver_all(cluster)
    ghost = cluster.ghost
    broken = [
        attrs.evolve(ghost, leaders={**ghost.leaders, Term(1): frozenset({NodeId(1), NodeId(2)})}),
        attrs.evolve(ghost, reads=(model.ReadRecord(NodeId(1), b"x", LogIndex(1), LogIndex(0)),)),
        attrs.evolve(ghost, campaigns=frozenset()),
    ]
    for doctored in broken:
        state = attrs.evolve(cluster, ghost=doctored)
        assert invariant_disagreements(evaluator, state) == []
        assert [name for name in STATE_INVARIANT_TWINS if not evaluator.call(name)] != []
