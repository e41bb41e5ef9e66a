"""Shared fixtures (small on purpose; test files add their own). ``tests/`` is on sys.path, so test files can
``from conformance import ...``."""
from __future__ import annotations

from pathlib import Path

import pytest

from geoshare_opt import Instance

REPO = Path(__file__).resolve().parents[1]
#: the reference graphs and published values the tests use, carried by the project (instances/reference/README.md)
REFERENCE_DATA = REPO / "instances" / "reference"


def tiny() -> Instance:
    """Two types, signed weights, a hard edge, all three caps; optimum 2.0: {a}{b,c}{x,y} (see test_core)."""
    nodes = [{"id": "a", "type": "A", "params": 4}, {"id": "b", "type": "A", "params": 4},
             {"id": "c", "type": "A", "params": 2}, {"id": "x", "type": "B", "params": 3},
             {"id": "y", "type": "B", "params": 3}]
    edges = [("a", "b", 1.0), ("b", "c", -0.5), ("a", "c", "hard"), ("x", "y", 2.5), ("a", "x", 9.0)]
    return Instance.build(nodes, edges, 3, max_classes_per_type={"A": 2}, max_params=12, name="tiny")


@pytest.fixture
def tiny_instance() -> Instance:
    return tiny()


@pytest.fixture
def instance_file(tmp_path, tiny_instance) -> Path:
    path = tmp_path / "tiny.json"
    tiny_instance.save(path)
    return path


@pytest.fixture
def reference_data() -> Path:
    return REFERENCE_DATA
