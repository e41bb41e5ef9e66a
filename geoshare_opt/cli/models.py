"""``geoshare-opt build-model``: train (or find in the cache) a built-in model that the package trains itself."""
from __future__ import annotations

import json

import click

from .app import cli, emit

BUILDABLE = ("tiny-gpt",)


@cli.command("build-model")
@click.argument("name", type=click.Choice(BUILDABLE))
@click.option("--recipe", default="full", show_default=True,
              help="Which frozen recipe: full (the study's model) or test (a narrow model for tests).")
@click.option("--device", default=None, help="Training device (default: cuda when available, else cpu).")
@click.option("--force", is_flag=True, help="Retrain and overwrite the cache entry even if it is valid.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or messages on stderr.")
def build_model_cmd(name: str, recipe: str, device: str | None, force: bool, quiet: bool) -> None:
    """Train NAME with its frozen recipe and cache it (a cache hit only checks it). Prints a JSON summary: cache path,
    recipe hash, whether it came from the cache, training time, held-out perplexity and a unigram byte model's."""
    from ..specs.tinygpt import build_model

    _, record = build_model(recipe, device=device, force=force, progress=not quiet)
    keys = ("path", "recipe_sha256", "cached", "train_time_s", "train_cpu_s", "device", "threads", "heldout_loss",
            "heldout_perplexity", "unigram_heldout_perplexity", "heldout_bytes", "trained_tokens")
    summary = {"model": name, "recipe": recipe, **{k: record.get(k) for k in keys}}
    emit(json.dumps(summary, indent=2))
