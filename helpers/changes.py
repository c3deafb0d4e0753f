"""What makes two configs train different runs: the comparison behind resuming a checkpoint,
skipping a finished result, and averaging seeds; and whether a run's training recipe is
this code's (`recipe_changes`)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import ExperimentConfig
from .fields import field_types
from .results import RECIPE_BEFORE_VERSIONS, REMOVED_CONFIG_FIELDS, recipe_id
from .rules import warmup_steps

# Config fields that only say *where/how fast* a run executes. They may change between an
# interrupted run and its resumption (a new Colab GPU, a bigger eval batch), and a result
# made on another GPU still counts as done: they do not change what is trained. Neither do
# the fields an old checkpoint's config may still hold (results.REMOVED_CONFIG_FIELDS).
EXECUTION_FIELDS = frozenset({"device", "precision", "compile", "eval_batch_size",
                              "train_eval_images", "eval_every", "results_dir", "data_dir",
                              "weights", "keep_checkpoints", *REMOVED_CONFIG_FIELDS})


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


# ----------------------------------------------------------------------------- skip or train
@dataclass(frozen=True)
class Decision:
    """What a run needs: "skip" it, "resume" it from its checkpoint, or "start" it from
    scratch. Deciding deletes nothing: the runner discards or sets aside what it says."""
    action: str                         # skip | resume | start
    note: str                           # a few words, for the runner's summary table
    why: str                            # one sentence, for the log
    discard_checkpoint: bool = False    # it belongs to another config, or cannot resume
    set_aside_result: bool = False      # --force: else the engine would return the result


def stale_reasons(saved: dict, config: dict, keep_recipe: bool = False) -> list[str]:
    """Why a saved run (a complete result, or a checkpoint: both record their config and
    recipe) is not a run of `config`, as 'what: old -> new' each: another config, or
    another training recipe (unless `keep_recipe`)."""
    # One term per kind of reason: another is one more term.
    return (config_changes(saved.get("config") or {}, config)
            + ([] if keep_recipe else recipe_changes(saved.get("recipe"))))


def _another(saved: dict, config: dict) -> str:
    """What makes a stale saved run another run: its "config" (first), else its "recipe"."""
    return "config" if config_changes(saved.get("config") or {}, config) else "recipe"


def decide(config: dict, result: dict | str | None, checkpoint: dict | str | None = None,
           force: bool = False, keep_recipe: bool = False) -> Decision:
    """Skip, resume or start over: the one rule, applied by the engine (Experiment.completed)
    and by the grid runner to what a run's files hold. `result`: the result file's record,
    why it cannot be read (a str), or None (no file);
    `checkpoint`: what its checkpoint holds (helpers.checkpoint.peek_checkpoint: its
    config and recipe), why it cannot be read (a str), or None (none);
    `force`: train a complete run again (the runner's --force); `keep_recipe`: a complete
    run of another training recipe stands (the runner's --keep-recipes)."""
    if isinstance(result, dict) and result.get("status") == "complete":
        stale = stale_reasons(result, config, keep_recipe)
        if stale:     # a kept checkpoint belongs to the finished run: it cannot resume this
            what = _another(result, config)
            return Decision("start", f"{what} changed", f"complete, but with another {what} ("
                            + "; ".join(stale) + "): training again from scratch"
                            + (" (--keep-recipes keeps it)" if what == "recipe" else ""), True)
        if force:
            return Decision("start", "forced", "--force: training again from scratch (the "
                            "previous result is kept as <run>.json.replaced)", True, True)
        return Decision("skip", "already complete", "already complete with this config")
    if isinstance(checkpoint, str):
        return Decision("start", "checkpoint unusable", f"its checkpoint cannot resume this "
                        f"run ({checkpoint}): training from scratch", True)
    changes = [] if checkpoint is None else stale_reasons(checkpoint, config)
    if changes:       # its optimiser and schedule state belong to the other run
        what = _another(checkpoint, config)
        return Decision("start", f"{what} changed", f"its checkpoint was made with another "
                        f"{what} (" + "; ".join(changes) + "): training from scratch", True)
    then = "start" if checkpoint is None else "resume"
    if result is None:
        return (Decision(then, "new", "not run yet") if checkpoint is None else
                Decision(then, "resumed", "interrupted before: resuming from its checkpoint"))
    if isinstance(result, str):
        return Decision(then, "retried", f"unreadable result file ({result})")
    reason = " ".join(str(result.get("reason") or "").split())
    reason = reason if len(reason) <= 100 else reason[:99] + "…"
    return Decision(then, "retried", f"previous attempt {result.get('status')}: {reason}")
