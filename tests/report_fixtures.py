"""The made-up result folders under tests/fixtures/, shared by the report's tests."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, f"results_{name}")


def raw(name):
    """The fixture's JSON files, read independently of helpers.report."""
    d = fixture(name)
    return {f[:-5]: json.load(open(os.path.join(d, f)))
            for f in os.listdir(d) if f.endswith(".json")}


def table_cells(md: str) -> dict[str, list[str]]:
    """A markdown pipe table's rows: first cell -> the other cells, stripped."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in md.splitlines() if line.startswith("|")]
    return {r[0]: r[1:] for r in rows}
