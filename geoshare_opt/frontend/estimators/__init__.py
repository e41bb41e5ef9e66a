"""Curvature estimators: ``diag`` (Gauss-Newton / Fisher diagonal or Hutchinson), ``kfac`` (Kronecker factors per
linear layer), ``lanczos`` (top Hessian eigenpairs plus a scalar for the rest). Each returns a ``Curvature``."""
from .common import Curvature, PassContext  # noqa: F401
