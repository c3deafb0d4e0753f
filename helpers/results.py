"""Result files: one JSON per run, with the metrics and where they came from.

Tables and prose in the report are rendered from these files only, so each file carries
its resolved config, dataset, library versions, device, git commit and status, the
training recipe it was made with (`recipe_id`), and the version of its format
(`SCHEMA_VERSION`): `read_result` migrates a file of an older version, never refuses it.
"""
from __future__ import annotations

import ast
import datetime as _dt
import functools
import glob
import hashlib
import json
import math
import os
import platform
import shutil
import socket
import subprocess
from typing import TypedDict

from .atomic import write_text
from .config import synthetic_classes
from .fields import field_types, value_problem
from .paths import REPO_ROOT

STATUSES = ("complete", "failed", "skipped")
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_output(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(*, device: str | None = None, device_type: str | None = None,
               precision: str | None = None, compile: bool | None = None,
               seed: int | None = None, started: str | None = None,
               finished: str | None = None) -> dict:
    """Where a result came from: code version, libraries, machine, seed and times."""
    import torch
    versions = {}
    for lib in ("torchvision", "timm"):
        try:
            versions[lib] = __import__(lib).__version__
        except ImportError:
            versions[lib] = None
    status = git_output("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": git_output("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        **versions,
        "device": device,                  # this process's; every epoch's: result["devices"]
        "device_type": device_type,
        "precision": precision,
        "compile": compile,
        "seed": seed,
        "started": started,
        "finished": finished,
        "hostname": socket.gethostname(),
    }


# ----------------------------------------------------------------------------- the recipe
# What trains a run beyond its config: the definitions below (file under helpers/ -> names;
# "Class.name" for one member of a class). The optimiser and its parameter groups, the
# learning-rate schedule, the loss and the training step, evaluation, the per-model
# defaults, the automatic batch and warm-up rules, and the augmentation. Of the models only
# what they exempt from weight decay: their parameter and FLOP counts are in every result.
RECIPE_SOURCES = {
    "train.py": ("make_optimizer", "make_scheduler", "train_epoch", "evaluate"),
    "models/vit.py": ("ViT.no_weight_decay",),
    "models/swin.py": ("SwinClassifier.no_weight_decay",),
    "rules.py": ("MIN_STEPS_PER_EPOCH", "MIN_AUTO_BATCH", "AUTO_WARMUP_MAX_SHARE",
                 "auto_batch_size", "warmup_steps"),
    "config.py": ("TRAIN_DEFAULTS",),
    "data/loader.py": ("DeviceLoader.PAD", "DeviceLoader._generator", "DeviceLoader._shuffle",
                       "DeviceLoader.epoch", "DeviceLoader._crop_flip"),
}


def _canonical(node) -> str:
    """An AST node as text: node types, fields and constants, no positions. Empty fields
    are left out, so the text is the same on every Python that parses the code alike."""
    if isinstance(node, ast.AST):
        fields = [(f, getattr(node, f, None)) for f in node._fields
                  if f not in ("ctx", "type_comment")]
        inner = ",".join(f"{f}={_canonical(v)}" for f, v in fields if v not in (None, []))
        return f"{type(node).__name__}({inner})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(v) for v in node) + "]"
    return repr(node)


def _without_docstrings(node: ast.AST) -> ast.AST:
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            n.body = body[1:] or [ast.Pass()]
    return node


def _definition(body: list, name: str, where: str) -> ast.AST:
    """The statement of `body` that defines `name` (def, class or assignment)."""
    for stmt in body:
        targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
        if name in [getattr(stmt, "name", None)] + [getattr(t, "id", None) for t in targets]:
            return stmt
    raise LookupError(f"{where} defines no {name!r}: results.RECIPE_SOURCES names it as part "
                      "of the training recipe; update RECIPE_SOURCES to where it went")


def recipe_digest(sources: dict[str, str]) -> str:
    """12 hex digits of the SHA-256 of the recipe's definitions, normalised: for each file
    of RECIPE_SOURCES (its text in `sources`) and each name listed for it, the syntax tree
    of its definition without docstrings, so comments, docstrings and layout do not count."""
    parts = []
    for file, names in RECIPE_SOURCES.items():
        body = ast.parse(sources[file]).body
        for name in names:
            node = body
            for part in name.split("."):             # "Class.member": the class, then its member
                node = _definition(getattr(node, "body", node), part, f"helpers/{file}")
            parts.append(f"{file}:{name}={_canonical(_without_docstrings(node))}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=None)
def recipe_id() -> str:
    """This code's training recipe: recipe_digest of the definitions RECIPE_SOURCES lists,
    read from the package's files. It changes exactly when one of those definitions
    changes as code (not in a comment, docstring or layout): a finished result or a
    checkpoint of another recipe was trained by other code than this."""
    sources = {}
    for file in RECIPE_SOURCES:
        with open(os.path.join(PACKAGE_DIR, file), encoding="utf-8") as f:
            sources[file] = f.read()
    return recipe_digest(sources)


def _epoch_ranges(epochs: list[int]) -> str:
    """[2, 3, 4, 6] -> '2-4, 6'."""
    out, start = [], None
    for i, e in enumerate(epochs):
        if start is None:
            start = e
        if i + 1 == len(epochs) or epochs[i + 1] != e + 1:
            out.append(str(start) if start == e else f"{start}-{e}")
            start = None
    return ", ".join(out)


def epoch_time_summary(history: list[dict]) -> dict:
    """Mean training time per epoch, warm-up excluded: each process's first epoch (its
    "segment"'s first, after a resume too) carries one-off costs (cuDNN autotuning,
    allocator warm-up, torch.compile) and is left out wherever a later epoch remains."""
    if not history:
        return dict(epoch_time_s=None, epoch_time_note="no epoch finished",
                    epoch_time_epochs=[], first_epoch_time_s=None, total_train_time_s=0.0,
                    devices=[])
    seen_segments, warm, steady = set(), [], []
    for h in history:
        segment = h.get("segment", 1)
        (steady if segment in seen_segments else warm).append(h)
        seen_segments.add(segment)
    devices = list(dict.fromkeys(h.get("device") for h in history if h.get("device")))
    used = steady or warm
    epochs = [h["epoch"] for h in used]
    mean = sum(h["epoch_time_s"] for h in used) / len(used)
    first = ", ".join(str(h["epoch"]) for h in warm)
    if steady:
        what = (f"epoch {epochs[0]} only" if len(epochs) == 1 else f"mean of epochs "
                f"{_epoch_ranges(epochs)}")
        which = "epoch" if len(warm) == 1 else "epochs"
        note = (f"{what}; {which} {first} (each process's first: warm-up/compile) excluded; "
                "evaluation excluded; device synchronised")
    else:
        what = "epoch 1 only" if len(epochs) == 1 else f"mean of epochs {_epoch_ranges(epochs)}"
        note = (f"{what} (each the first of its process, so warm-up/compile is included and "
                "the steady state is overstated); evaluation excluded; device synchronised")
    if len(devices) > 1:
        note += f"; epochs ran on {len(devices)} devices: {', '.join(devices)}"
    return dict(epoch_time_s=mean, epoch_time_note=note, epoch_time_epochs=epochs,
                first_epoch_time_s=history[0]["epoch_time_s"],
                total_train_time_s=sum(h["epoch_time_s"] for h in history), devices=devices)


def _nonfinite_to_null(value, path: str, found: dict):
    """A copy of `value` with NaN/inf floats replaced by None; their paths go into `found`."""
    if isinstance(value, float) and not math.isfinite(value):
        found[path] = str(value)
        return None
    if isinstance(value, dict):
        return {k: _nonfinite_to_null(v, f"{path}.{k}" if path else k, found)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nonfinite_to_null(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def write_result(result: dict, results_dir: str | None = None) -> str:
    """Write `<results_dir>/<run_name>.json` atomically and return its path.

    NaN and inf (a diverged test loss, say) cannot be JSON: they are stored as null, listed
    under "nonfinite_metrics" and named in "reason", so a finished run is never lost. Nor
    is it under a failure: a record that is not complete, written over a complete one (a
    retraining under another config that failed), keeps it as <run>.json.replaced."""
    if result.get("status") not in STATUSES:
        raise ValueError(f"result status must be one of {STATUSES}, got {result.get('status')!r}")
    if not result.get("run_name"):
        raise ValueError("result has no run_name")
    results_dir = results_dir or result["config"]["results_dir"]
    path = os.path.join(results_dir, f"{result['run_name']}.json")
    found: dict = {}
    clean = _nonfinite_to_null(result, "", found)
    if found:       # JSON has no NaN/inf: keep the run, say which values were not finite
        clean["nonfinite_metrics"] = found
        note = "non-finite values stored as null: " + ", ".join(
            f"{k}={v}" for k, v in found.items())
        clean["reason"] = f"{clean['reason']}; {note}" if clean.get("reason") else note
    if clean["status"] != "complete" and _complete_on_disk(path):
        shutil.copy2(path, path + ".replaced")         # which the report does not read
    write_text(path, json.dumps(clean, indent=1, allow_nan=False) + "\n")
    return path


def _complete_on_disk(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("status") == "complete"
    except (OSError, ValueError):
        return False


# ----------------------------------------------------------------------------- versions
# Version 1 added schema_version and recipe. A file without schema_version is version 0:
# written by the code version 1 starts from, whose recipe was RECIPE_BEFORE_VERSIONS
# (recipe_id() at the commit that added versions).
SCHEMA_VERSION = 2
RECIPE_BEFORE_VERSIONS = "ef6238c15a42"


class ResultVersionError(RuntimeError):
    """A result file of a newer format than this code reads (update the code)."""


def _add_version_and_recipe(r: dict) -> dict:
    """0 -> 1: the recipe of the code that wrote every file without a version."""
    return {**r, "recipe": r.get("recipe") or RECIPE_BEFORE_VERSIONS}


# Version 2 dropped the config fields of speed and caching options the engine no longer
# has; none of them changed what a run trains, and every run had them off ("compile" was
# None where no one chose: eager). It also dropped "phases", a run's time split by clocks.
REMOVED_CONFIG_FIELDS = ("compile_scope", "fused_attention", "cache_features")


def _drop_removed_fields(r: dict) -> dict:
    """1 -> 2: no "phases"; the config without REMOVED_CONFIG_FIELDS, `compile` a bool."""
    r = {k: v for k, v in r.items() if k != "phases"}
    if not isinstance(r.get("config"), dict):
        return r
    config = {k: v for k, v in r["config"].items() if k not in REMOVED_CONFIG_FIELDS}
    if "compile" in config:
        config["compile"] = bool(config["compile"])
    return {**r, "config": config}


# MIGRATIONS[v] turns a version-v record into a version v + 1 record. A new required key,
# or a config field removed, is a new version: SCHEMA_VERSION += 1 and one step here.
MIGRATIONS = (_add_version_and_recipe, _drop_removed_fields)
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(result: dict, path: str = "") -> dict:
    """`result` brought to SCHEMA_VERSION by the MIGRATIONS steps it lacks (a new dict;
    the input is not changed). A file of a newer version raises ResultVersionError, which
    names `path` and both versions."""
    version = result.get("schema_version", 0)
    where = path or "a result"
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{where}: schema_version={version!r} must be a whole number >= 0")
    if version > SCHEMA_VERSION:
        raise ResultVersionError(
            f"{where} has schema_version {version}, but this code reads versions up to "
            f"{SCHEMA_VERSION}: it was written by newer code. Update this checkout (git pull) "
            "to read it.")
    for step in MIGRATIONS[version:]:
        result = step(result)
    return {"schema_version": SCHEMA_VERSION,
            **{k: v for k, v in result.items() if k != "schema_version"}}


def read_result(path: str) -> dict:
    """One result file, migrated to SCHEMA_VERSION (see `migrate`)."""
    with open(path) as f:
        result = json.load(f)
    if not isinstance(result, dict):
        raise ValueError(f"{path}: not a JSON object")
    return migrate(result, path)


def read_results(results_dir: str) -> list[dict]:
    """Every result JSON in a folder (not recursive), sorted by run name."""
    paths = sorted(glob.glob(os.path.join(results_dir, "*.json")))
    return [read_result(p) for p in paths]


def load_results(results_dir: str):
    """All results in a folder as a pandas DataFrame, one row per run.

    Top-level scalars become columns; `config`, `dataset` and `provenance` are flattened
    with a prefix (`config.lr`, `dataset.name`, ...); `history` stays a list column.
    """
    import pandas as pd
    rows = []
    for r in read_results(results_dir):
        row = {k: v for k, v in r.items() if not isinstance(v, dict)}
        for key in ("config", "dataset", "provenance"):
            for k, v in (r.get(key) or {}).items():
                row[f"{key}.{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- the record
class ResultRecord(TypedDict):
    """Every result file's keys, whatever its status; what a run never measured is None
    (failed_result: nothing measured, no history)."""
    schema_version: int
    run_name: str
    problem: int
    model: str
    label: str | None
    config: dict
    dataset: dict
    params: int | None
    trainable_params: int | None
    macs_thop: int | None
    flops: int | None
    history: list
    epoch_time_s: float | None
    epoch_time_note: str
    epoch_time_epochs: list
    first_epoch_time_s: float | None
    total_train_time_s: float
    devices: list
    eval_time_s: float
    test_acc: float | None
    train_acc: float | None
    train_eval_acc: float | None
    training: dict | None
    status: str
    reason: str | None
    recipe: str
    provenance: dict


class ResultExtras(TypedDict, total=False):
    """Keys only some results have (non-finite values, probes)."""
    nonfinite_metrics: dict
    probes: dict


MEASURED_FIELDS = ("params", "trainable_params", "macs_thop", "flops")


def build_result(*, run_name: str, problem: int, model: str, label: str | None,
                 config: dict, dataset: dict, measured: dict, history: list[dict],
                 training: dict | None, status: str, reason: str | None, provenance: dict,
                 probes: dict | None = None,
                 recipe: str | None = None) -> dict:
    """One run's result record: its identity, config, measurements, the history and what
    follows from it (epoch times, final accuracies), status, the recipe (this code's
    recipe_id() unless given) and provenance."""
    last = history[-1] if history else {}
    result = dict(schema_version=SCHEMA_VERSION, run_name=run_name, problem=problem,
                  model=model, label=label, config=config,
                  dataset=dataset, **{k: measured.get(k) for k in MEASURED_FIELDS},
                  history=history, **epoch_time_summary(history),
                  eval_time_s=sum(h["eval_time_s"] for h in history),
                  test_acc=last.get("test_acc"), train_acc=last.get("train_acc"),
                  train_eval_acc=last.get("train_eval_acc"),
                  training=training, status=status, reason=reason)
    if probes is not None:
        result["probes"] = probes
    result["recipe"] = recipe or recipe_id()
    result["provenance"] = provenance
    return result


# ----------------------------------------------------------------------------- checks
def failed_result(*, run_name: str, problem: int, model: str, label: str | None,
                  config: dict, status: str, reason: str, started: str) -> dict:
    """The record of a run that ended before the engine wrote one (a dead kernel, weights
    this machine cannot get): nothing measured, no epoch."""
    dataset = config.get("dataset")
    return build_result(
        run_name=run_name, problem=problem, model=model, label=label, config=config,
        dataset=dict(name=dataset, synthetic=synthetic_classes(dataset) is not None), measured={},
        history=[], training=None, status=status, reason=reason,
        provenance=provenance(seed=config.get("seed"), compile=config.get("compile"),
                              started=started, finished=now_iso()))


def record_problems(r: dict) -> list[str]:
    """What keeps `r` from being a ResultRecord once migrated (results.migrate): a newer
    schema_version, missing or unknown keys, values of the wrong type, an unknown status.
    Empty for a valid record, of this schema version or an older one."""
    try:
        r = migrate(r)
    except (ResultVersionError, ValueError) as err:
        return [str(err)]
    required, extras = field_types(ResultRecord), field_types(ResultExtras)
    out = [f"missing key {k}" for k in required if k not in r]
    out += [f"unknown key {k}" for k in sorted(set(r) - set(required) - set(extras))]
    for k, (types, can_be_none) in {**required, **extras}.items():
        problem = value_problem(k, r[k], types, can_be_none) if k in r else None
        if problem:
            out.append(problem)
    if r.get("status") not in STATUSES:
        out.append(f"status={r.get('status')!r}: valid statuses: {', '.join(STATUSES)}")
    return out
