"""The import-direction lint accepts the real tree and rejects each forbidden edge."""

from pathlib import Path

import pytest

from tools.check_import_direction import find_violations

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def test_the_project_tree_follows_the_layering() -> None:
    assert find_violations(REPOSITORY_ROOT) == []


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("spec", "import impl.node\n"),
        ("spec", "from models import kv\n"),
        ("spec", "import grpc\n"),
        ("models", "from impl.wal import writer\n"),
        ("conformance", "from impl.api import server\n"),
        ("impl", "from conformance import checker\n"),
        ("impl", "import models.cluster\n"),
        ("tools", "import attrs\n"),
    ],
)
def test_a_forbidden_import_is_reported(tmp_path: Path, package: str, source: str) -> None:
    (tmp_path / package).mkdir()
    (tmp_path / package / "module.py").write_text(source)
    violations = find_violations(tmp_path)
    assert len(violations) == 1
    assert violations[0].path == f"{package}/module.py"


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "module.py").write_text("import attrs\nimport bisect\nfrom spec import x\n")
    (tmp_path / "impl").mkdir()
    (tmp_path / "impl" / "cli.py").write_text("import conformance\nimport models\n")
    assert find_violations(tmp_path) == []
