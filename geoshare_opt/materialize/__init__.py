"""The back end (imports torch): a colouring becomes a smaller network that really shares storage.

``apply(model, instance, result, mode="tie"|"basis", curvature=...) -> (compressed, ApplyReport)``,
``save_compressed(model, outdir, report.tie_map)``, ``load_compressed(outdir, model_or_spec)``,
``parameter_report(model)``, ``recover(model, spec, steps=...)`` (a short training that keeps the sharing).
Only the 2-D weights named by the instance are shared; biases and norms stay per layer.
"""
from .apply import MODES, ApplyReport, apply  # noqa: F401
from .basis import SharedBasisLinear  # noqa: F401
from .corrections import CorrectedBasisLinear, CorrectedLinear  # noqa: F401
from .recover import RecoveryReport, recover  # noqa: F401
from .report import parameter_report  # noqa: F401
from .save import TieMapError, load_compressed, read_tie_map, save_compressed  # noqa: F401

__all__ = ["apply", "ApplyReport", "save_compressed", "load_compressed", "read_tie_map", "parameter_report",
           "SharedBasisLinear", "TieMapError", "MODES", "recover", "RecoveryReport", "CorrectedLinear",
           "CorrectedBasisLinear"]
