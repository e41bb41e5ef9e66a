"""Model specs: a trained network, its calibration batches, a loss and optional metrics (imports torch).

``load_spec("minilm")``, ``load_spec("digits-mlp")``, ``load_spec("path/to/file.py:make")``,
``load_spec("package.module:make")`` or a Hugging Face model directory. See ``base.ModelSpec`` for the contract.
"""
from .base import ModelSpec, as_spec, move_batch  # noqa: F401
from .load import BUILTIN, load_spec  # noqa: F401
