"""The curvature front end (imports torch): a trained network -> a weighted layer-conflict instance.

``analyze(spec_or_model, ...) -> Instance`` (``out=`` also writes the instance and its curvature sidecar),
``load_curvature(instance)`` reads the sidecar back (hash-checked), ``fingerprint(model, node_ids)`` identifies the
weights an instance was computed from, ``discover(model, include, exclude)`` lists the shareable tensors.
Never imports the solvers.
"""
from .analyze import ESTIMATORS, MODES, analyze  # noqa: F401
from .discovery import NodeInfo, discover, role_of  # noqa: F401
from .sidecar import fingerprint, load_curvature, sidecar_path  # noqa: F401

__all__ = ["analyze", "discover", "fingerprint", "load_curvature", "sidecar_path", "NodeInfo", "role_of",
           "ESTIMATORS", "MODES"]
