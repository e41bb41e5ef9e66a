"""Finding a spec by reference: a built-in name, ``file.py:make``, ``package.module:make`` or a Hugging Face model
directory (``hf``); what the reference's ``make`` returns is checked by ``base.as_spec``."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .base import ModelSpec, as_spec

BUILTIN = {
    "minilm": "geoshare_opt.specs.minilm:make",
    "digits-mlp": "geoshare_opt.specs.digits:make",
    "tiny-gpt": "geoshare_opt.specs.tinygpt:make",
}

def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``: errors stay one line on the command line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def load_callable(ref: str) -> Callable:
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise InputError(f"spec {ref!r}: expected 'file.py:function' or 'package.module:function'")
    if target.endswith(".py") or os.sep in target or target.startswith("."):
        path = Path(target)
        if not path.is_file():
            raise InputError(f"spec {ref!r}: file {target} not found")
        mod_name = f"_geoshare_user_spec_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:  # the user's file failed to import
            sys.modules.pop(mod_name, None)
            raise InputError(f"spec {ref!r}: importing {target} failed: {_one_line(exc)}") from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise InputError(f"spec {ref!r}: cannot import module {target!r}: {_one_line(exc)}") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise InputError(f"spec {ref!r}: {target} has no callable {attr!r}")
    return fn


def _check_options(ref: str, fn: Callable, options: dict) -> None:
    """Unknown and missing options are the user's mistake: say which, and what the spec accepts."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):       # a builtin or C callable without a signature: let the call tell
        return
    try:
        signature.bind(**options)
    except TypeError:
        params = signature.parameters
        accepted = [p for p in params if p != "path"]
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        unknown = [] if takes_any else sorted(set(options) - set(params))
        if unknown:
            raise InputError(f"spec {ref!r}: unknown option {unknown[0]!r} "
                             f"(accepts {', '.join(accepted) or 'no options'})") from None
        missing = [name for name, p in params.items() if p.default is p.empty and name not in options
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if missing:
            raise InputError(f"spec {ref!r}: make() needs argument {missing[0]!r}: pass --spec-option "
                             f"{missing[0]}=VALUE") from None
        raise InputError(f"spec {ref!r}: make() cannot take the options {sorted(options)} "
                         f"(its signature is {signature})") from None


def load_spec(ref: str, **options) -> ModelSpec:
    """A spec by built-in name, ``file.py:make``, ``package.module:make`` or Hugging Face model directory.
    ``options`` are keyword arguments of ``make`` (built-in: e.g. ``n_calib``, ``seq_len``; a user's ``make`` gets
    them too, checked against its signature)."""
    if ref in BUILTIN:
        fn = load_callable(BUILTIN[ref])
        _check_options(ref, fn, options)
        return as_spec(fn(**options), ref)
    if os.path.isdir(ref):
        from .hf import make_from_directory
        _check_options(ref, make_from_directory, {"path": ref, **options})
        return as_spec(make_from_directory(ref, **options), os.path.basename(os.path.normpath(ref)))
    if ":" not in ref:
        raise InputError(f"unknown spec {ref!r}: use one of {', '.join(BUILTIN)}, file.py:make, package.module:make, "
                         "or a Hugging Face model directory")
    fn = load_callable(ref)
    _check_options(ref, fn, options)
    try:
        obj = fn(**options)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"spec {ref!r}: make() failed: {_one_line(exc)}") from None
    return as_spec(obj, ref)
