"""What makes two configs train different runs: the comparison behind resuming a checkpoint,
skipping a finished result, and averaging seeds; and whether a run's training recipe is
this code's (`recipe_changes`)."""
from __future__ import annotations

from .config import ExperimentConfig
from .fields import field_types
from .results import RECIPE_BEFORE_VERSIONS, recipe_id
from .rules import warmup_steps

# Config fields that only say *where/how fast* a run executes. They may change between an
# interrupted run and its resumption (a new Colab GPU, a bigger eval batch), and a result
# made on another GPU still counts as done: they do not change what is trained.
EXECUTION_FIELDS = frozenset({"device", "precision", "compile", "compile_scope",
                              "fused_attention", "eval_batch_size", "train_eval_images",
                              "eval_every", "results_dir", "data_dir", "weights",
                              "keep_checkpoints"})


def config_changes(old: dict, new: dict) -> list[str]:
    """'field: old -> new' for every config field that changes what is trained: what makes a
    checkpoint unresumable and a finished result stale. Batch size and warm-up are compared
    by what they come to (see `_effective`), so a config that spells out the values the
    automatic rules would give matches one that leaves them unset."""
    old, new = _effective(old), _effective(new)
    keys = sorted((set(old) | set(new)) - EXECUTION_FIELDS)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _effective(d: dict) -> dict:
    """The config dict with batch_size and warmup_epochs replaced by the batch and the
    warm-up steps they give, where the training-set size is known without loading data
    (CIFAR-100, synthetic); elsewhere (a .npz) the dict as it is."""
    try:
        cfg = ExperimentConfig(**{k: v for k, v in d.items() if k in field_types(ExperimentConfig)})
        n = cfg.known_train_size()
        if n is None:
            return d
        batch = cfg.train_batch_size(n)
        steps = n // batch
        warm = warmup_steps(cfg.warmup_epochs, steps, steps * cfg.epochs)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):   # a malformed dict
        return d
    return dict(d, batch_size=batch, warmup_epochs=f"{warm} warm-up steps")


def recipe_changes(saved_recipe: str | None) -> list[str]:
    """['recipe: old -> new'] when a result or checkpoint was trained under another recipe
    than this code's (results.recipe_id), else []. None is a checkpoint from before recipes
    were recorded: the recipe of that code, results.RECIPE_BEFORE_VERSIONS."""
    old, new = saved_recipe or RECIPE_BEFORE_VERSIONS, recipe_id()
    return [] if old == new else [f"recipe: {old} -> {new}"]
