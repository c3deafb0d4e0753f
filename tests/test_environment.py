"""The lock files agree with requirements.txt, and the oldest lock sits on its lower bounds.

requirements.txt holds lower bounds (for Colab and JupyterLab users who keep their own
torch); requirements.lock holds the exact versions `make setup`/`make test`/CI install;
requirements/oldest.lock holds the oldest torch pair the bounds allow (`make test-oldest`).
A requirement edited without `make lock` fails here.
"""
import os
import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def requirements(path):
    """{name: Requirement} of a requirements file (comments and options skipped)."""
    out = {}
    with open(os.path.join(ROOT, path)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                req = Requirement(line)
                out[canonicalize_name(req.name)] = req
    return out


def pins(path):
    """{name: [versions]} of a lock file; a package may be pinned once per marker."""
    out = {}
    with open(os.path.join(ROOT, path)) as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line)
            if m:
                out.setdefault(canonicalize_name(m[1]), []).append(Version(m[2]))
    return out


BOUNDS = requirements("requirements.txt")


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements/oldest.lock"])
def test_every_requirement_is_pinned_within_its_bounds(lock):
    pinned = pins(lock)
    for name, req in BOUNDS.items():
        assert name in pinned, f"{name} is in requirements.txt but not in {lock}: run make lock"
        for version in pinned[name]:
            assert req.specifier.contains(version, prereleases=True), (lock, name, version)


@pytest.mark.parametrize("lock, pair", [("requirements.lock", "requirements/pins.txt"),
                                        ("requirements/oldest.lock",
                                         "requirements/pins-oldest.txt")])
def test_each_lock_has_the_torch_pair_it_was_built_on(lock, pair):
    pinned = pins(lock)
    for name, req in requirements(pair).items():
        assert all(req.specifier.contains(v) for v in pinned[name]), (lock, name)


def test_the_oldest_pair_is_the_lower_bound_of_requirements_txt():
    oldest = pins("requirements/oldest.lock")
    for name in ("torch", "torchvision"):
        [low] = [s.version for s in BOUNDS[name].specifier if s.operator == ">="]
        [version] = oldest[name]
        assert version.release[:2] == Version(low).release[:2], (name, version, low)


def test_the_installed_torch_is_inside_the_supported_range():
    import torch
    import torchvision
    for mod in (torch, torchvision):
        version = Version(mod.__version__.split("+")[0])
        assert BOUNDS[mod.__name__].specifier.contains(version), (mod.__name__, version)
