"""Repository-root conftest: makes `tools` importable by the tests (pytest puts this folder on sys.path)."""
