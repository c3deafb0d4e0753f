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
