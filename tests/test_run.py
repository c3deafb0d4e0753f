"""The runner: a killed grid resumes without redoing finished runs; failures are recorded
and the grid carries on; fine-tuning without weights is "skipped"; a changed config reruns.

The grids are tiny (synthetic data, 64 training images, one epoch, toy ViTs); every
notebook execution still starts a kernel, so each test keeps the number of runs small.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import grid, runner
from helpers.changes import config_changes
from helpers.paths import REPO_ROOT
from helpers.gridrun import report_paths
from helpers.gridrun import read_time_record
from helpers.results import record_problems
from helpers.results import read_result, recipe_id

def tiny_args(epochs_p1=1):
    return ["--dataset", "synthetic", "--train-subset", "64", "--test-subset", "32",
            "--epochs-p1", str(epochs_p1), "--epochs-p2", "1", "--batch-size", "32",
            "--device", "cpu", "--no-report"]


TINY_ARGS = tiny_args()
TOY_VIT = dict(model="vit", label="ViT (toy)", patch_size=8, dim=32, depth=1, heads=2)


def dirs_args(tmp_path):
    return ["--results-dir", str(tmp_path / "results"),
            "--executed-dir", str(tmp_path / "executed")]


def mtime(path):
    return os.stat(path).st_mtime_ns


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """No pretrained weights reachable, whatever this machine's network or HF cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_failures_are_recorded_and_the_grid_carries_on(tmp_path, monkeypatch, capsys,
                                                       offline_hub):
    monkeypatch.chdir(REPO_ROOT)
    bad_npz = tmp_path / "broken.npz"           # no y_test: the data loader must refuse it
    rng = np.random.default_rng(0)
    np.savez(bad_npz, x_train=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8),
             y_train=np.zeros(8, dtype=np.int64),
             x_test=rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    entries = [
        dict(TOY_VIT, run_name="t-bad-data", dataset=str(bad_npz)),    # dies in the notebook
        dict(run_name="p2-swin_tiny-finetune", model="swin_tiny", mode="finetune",
             label="Swin-Tiny"),                                       # no weights offline
        dict(TOY_VIT, run_name="t-good"),
    ]
    args = TINY_ARGS + dirs_args(tmp_path)
    results = tmp_path / "results"

    assert runner.main(args, entries=entries) == 1               # something failed
    r = {e["run_name"]: read_result(results / f"{e['run_name']}.json") for e in entries}
    assert r["t-bad-data"]["status"] == "failed"
    assert r["t-bad-data"]["reason"].startswith("DatasetFormatError") \
        and "y_test" in r["t-bad-data"]["reason"]
    assert r["p2-swin_tiny-finetune"]["status"] == "skipped"
    assert r["p2-swin_tiny-finetune"]["reason"].startswith("WeightsUnavailableError")
    assert r["t-good"]["status"] == "complete" and len(r["t-good"]["history"]) == 1
    # Recorded failures are result records like any other: every field, their config and
    # provenance, and null where nothing was measured.
    for result in r.values():
        assert record_problems(result) == []
    assert r["t-bad-data"]["params"] is None and r["t-bad-data"]["test_acc"] is None
    assert r["t-bad-data"]["config"]["dataset"] == str(bad_npz)
    assert r["t-bad-data"]["provenance"]["started"] and r["t-bad-data"]["history"] == []
    out = capsys.readouterr().out
    table = out[out.index("\nrun "):]
    for name, status in [("t-bad-data", "failed"),
                         ("p2-swin_tiny-finetune", "skipped"), ("t-good", "complete")]:
        assert any(line.startswith(name) and f" {status} " in line
                   for line in table.splitlines()), (name, status)
    assert (tmp_path / "executed" / "t-bad-data.ipynb").exists()    # traceback kept
    if os.path.isdir("/proc"):
        assert kernel_processes() == set()                          # no kernel left running

    # Again: failed runs are retried, the complete one is neither re-executed nor
    # rewritten, and skipped runs alone do not make the exit status non-zero.
    good, good_nb = results / "t-good.json", tmp_path / "executed" / "t-good.ipynb"
    before = (mtime(good), mtime(good_nb))
    assert runner.main(args, entries=entries[1:]) == 0
    assert (mtime(good), mtime(good_nb)) == before
    rows = {r["run"]: r for r in read_time_record(str(results))["rows"]}
    assert rows["t-good"]["wall_s"] is None and rows["t-good"]["note"] == "already complete"
    # A row that cannot get its weights is checked again, and skipped without a kernel.
    assert rows["p2-swin_tiny-finetune"]["status"] == "skipped"
    assert rows["p2-swin_tiny-finetune"]["wall_s"] is None
    assert not (tmp_path / "executed" / "p2-swin_tiny-finetune.ipynb").exists()
    capsys.readouterr()

    # A changed config is trained again from scratch, and the runner says why.
    assert runner.main(tiny_args(epochs_p1=2) + dirs_args(tmp_path), entries=entries[2:]) == 0
    out = capsys.readouterr().out
    assert "epochs: 1 -> 2" in out
    redone = read_result(good)
    assert redone["config"]["epochs"] == 2 and [h["epoch"] for h in redone["history"]] == [1, 2]


def kernel_processes() -> set[int]:
    """ipykernel processes whose parent is this test process, from /proc."""
    found = set()
    for pid in child_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"ipykernel" in f.read():
                    found.add(pid)
        except OSError:                           # exited meanwhile
            continue
    return found


def child_pids(pid):
    """Processes whose parent is `pid` (the runner's notebook kernel), from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:                       # exited meanwhile
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the kernel process via /proc")
def test_killed_runner_resumes_without_redoing_finished_runs(tmp_path):
    """Kill the runner and its kernel (a machine dying, a Colab disconnect) after the first
    run has finished and the second has checkpointed an epoch; then start it again."""
    names = ["p1-vit-2L-2H-128", "p1-vit-4L-4H-256"]          # grid order
    cmd = ([sys.executable, "-m", "helpers.run", "--only", *names]
           + tiny_args(epochs_p1=3) + dirs_args(tmp_path))
    results = tmp_path / "results"
    first, second = results / f"{names[0]}.json", results / f"{names[1]}.json"
    checkpoint = results / "checkpoints" / f"{names[1]}.pt"
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while not checkpoint.exists():
            assert proc.poll() is None, open(tmp_path / "first.log").read()
            assert time.time() < deadline, "the second run never checkpointed"
            time.sleep(0.05)
    finally:
        kernels = child_pids(proc.pid)
        proc.kill()
        for pid in kernels:
            os.kill(pid, signal.SIGKILL)
        proc.wait()
        log.close()
    assert read_result(first)["status"] == "complete"
    assert not second.exists()                            # interrupted mid-training
    import torch
    saved = torch.load(checkpoint, weights_only=True)
    assert 1 <= saved["epoch"] < 3
    before = mtime(first)

    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[{names[0]}] already complete" in done.stdout
    assert f"[{names[1]}] interrupted before: resuming from its checkpoint" in done.stdout
    # A plain sequential run shares its results folder with no other worker: no claims.
    assert not (results / "locks").exists()
    assert mtime(first) == before                          # not redone, not rewritten
    r = read_result(second)
    assert r["status"] == "complete" and [h["epoch"] for h in r["history"]] == [1, 2, 3]
    # Resumed, not restarted: the epochs done before the kill are the checkpoint's own
    # records (a rerun would have measured new times).
    assert r["history"][:saved["epoch"]] == saved["history"]


def test_command_line_mistakes_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit, match="not in the grid; valid run names: .*p1-resnet18"):
        runner.main(["--only", "p1-resnet19", "--no-report"] + dirs_args(tmp_path))
    with pytest.raises(SystemExit, match="-p dim: .*--only"):
        runner.main(["-p", "dim", "64", "--no-report"] + dirs_args(tmp_path))
    with pytest.raises(SystemExit, match="-p depht: unknown; valid names: .*weight_decay"):
        runner.main(["-p", "depht", "2", "--no-report"] + dirs_args(tmp_path))
    with pytest.raises(SystemExit, match="--weights-small .*nope.pth: no such file"):
        runner.main(["--weights-small", str(tmp_path / "nope.pth"), "--no-report"])
    assert runner.main(["--list", "--problems", "2"]) == 0
    assert capsys.readouterr().out.split() == [
        f"p2-swin_{v}-{m}" for v in ("tiny", "small") for m in ("finetune", "finetune_full",
                                                                 "scratch")]


def test_parameters_reach_the_notebooks_and_the_config(tmp_path):
    """What the runner passes for a grid row: common options, the row's shape, -p extras
    (notebook parameters directly, other config fields via `overrides`), local weights."""
    (tmp_path / "w.pth").write_bytes(b"")
    settings = runner.parse_settings(
        TINY_ARGS + dirs_args(tmp_path) + ["--weights-tiny", str(tmp_path / "w.pth"),
                                           "-p", "lr", "0.01", "-p", "augment", "False"])
    assert settings.extra == {"lr": 0.01, "augment": False}
    plan = runner.make_plan(runner.select(settings), settings)
    by_name = {run.name: run for run in plan}
    vit = by_name["p1-vit-4L-4H-256"]
    assert (vit.cfg.depth, vit.cfg.heads, vit.cfg.dim, vit.cfg.lr) == (4, 4, 256, 0.01)
    assert vit.params["overrides"] == {"augment": False} and vit.cfg.augment is False
    assert vit.cfg.results_dir == str(tmp_path / "results") and vit.cfg.epochs == 1
    tiny_ft = by_name["p2-swin_tiny-finetune"]
    assert tiny_ft.params["variant"] == "tiny" and tiny_ft.cfg.model == "swin_tiny"
    assert tiny_ft.cfg.weights == str(tmp_path / "w.pth")
    assert by_name["p2-swin_small-finetune"].cfg.weights is None    # hub
    assert by_name["p2-swin_tiny-scratch"].cfg.weights is None      # nothing to load
    assert [run.name for run in plan] == [e["run_name"] for e in grid.grid()]


def test_the_runner_plans_every_row_with_the_config_its_notebook_builds(tmp_path):
    """Skip, resume or start over is judged, and an in-process row trained, by the config
    the row's notebook builds: its parameters cell, papermill's injected values, then its
    config cell, run here as the kernel would on every row of Problems 1-3. (Problem 3's
    cell defaults a ViT shape and a share that the config does not: a runner that left
    them out planned another config than the notebook trained, and re-ran done rows.)"""
    import json
    from helpers.paths import NOTEBOOKS
    settings = runner.parse_settings(["--demo", "--device", "cpu", "--no-report",
                                      "--problems", "1", "2", "3"] + dirs_args(tmp_path))
    plan = runner.make_plan(runner.select(settings), settings)
    assert {run.problem for run in plan} == {1, 2, 3}
    for run in plan:
        with open(NOTEBOOKS[run.problem], encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        [params_cell] = ["".join(c["source"]) for c in cells
                         if "parameters" in c["metadata"].get("tags", [])]
        [config_cell] = ["".join(c["source"]) for c in cells
                         if f"cfg = problem{run.problem}_config(" in "".join(c["source"])]
        kernel: dict = {}
        exec(params_cell, kernel)
        kernel.update(run.params)                      # papermill's injected cell
        exec(config_cell, kernel)
        assert kernel["cfg"] == run.cfg, (run.name, config_changes(run.cfg.to_dict(),
                                                                   kernel["cfg"].to_dict()))


def test_the_parameters_read_without_papermill_are_papermills():
    """papermill silently drops a parameter whose comment holds an '=': the runner's own
    reading (parameter_defaults: names and values) and papermill's must agree."""
    import ast
    import papermill
    from helpers.notebook_exec import parameter_defaults
    from helpers.paths import NOTEBOOKS
    for path in NOTEBOOKS.values():
        declared = papermill.inspect_notebook(path)
        assert parameter_defaults(path) == {
            name: ast.literal_eval(p["default"]) for name, p in declared.items()}, path


def test_grid_notebook_parameters_given_as_papermill_gives_them(monkeypatch, capsys):
    """`papermill notebooks/grid.ipynb out.ipynb -p problems 3 -p seeds 1` injects ints,
    and -p with spaces one string: they mean the one-item or the split list. A grid with a
    failed row raises, so that papermill's own exit status says so."""
    from helpers.runner import cli
    as_lists = cli.grid_args(problems=[3], seeds=[1], only=["a", "b"],
                             extra_args=["--train-subset", "64"])
    assert cli.grid_args(problems=3, seeds=1, only="a b", extra_args="--train-subset 64") \
        == as_lists
    assert as_lists[:4] == ["--problems", "3", "--seeds", "1"] and "--train-subset" in as_lists
    for code in (0, 1):
        monkeypatch.setattr(cli, "main", lambda argv, code=code: code)
        if code:
            with pytest.raises(RuntimeError, match="a row failed"):
                cli.run_grid(problems=1, device="cpu", report=False)
        else:
            assert cli.run_grid(problems=1, device="cpu", report=False) == 0
    assert "summary.ipynb" in capsys.readouterr().out


def test_only_changes_that_alter_training_count_as_a_changed_config():
    old = dict(epochs=5, lr=0.1, device="cuda", precision="bf16", results_dir="a", seed=0)
    new = dict(epochs=5, lr=0.1, device="cpu", precision="fp32", results_dir="b", seed=0)
    assert config_changes(old, new) == []
    assert config_changes(old, dict(new, seed=1, epochs=6)) == ["epochs: 5 -> 6",
                                                               "seed: 0 -> 1"]


def test_a_checkpoint_made_with_another_config_is_dropped_not_resumed(tmp_path):
    import torch
    settings = runner.parse_settings(TINY_ARGS + dirs_args(tmp_path) + ["--only", "p1-resnet18"])
    [run] = runner.make_plan(runner.select(settings), settings)
    ckpt = tmp_path / "results" / "checkpoints" / "p1-resnet18.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save(dict(config=run.cfg.to_dict(), recipe=recipe_id(), epoch=1), ckpt)
    decision = runner.decision_for(run, force=False)
    assert (decision.action, decision.note) == ("resume", "resumed") and ckpt.exists()
    torch.save(dict(config=run.cfg.to_dict(), recipe="0" * 12, epoch=1), ckpt)
    assert runner.decision_for(run, force=False).note == "recipe changed"   # other code's
    torch.save(dict(config=dict(run.cfg.to_dict(), epochs=7, device="cuda"), epoch=1), ckpt)
    decision = runner.decision_for(run, force=False)
    assert ckpt.exists()                       # deciding what to do deletes nothing...
    runner.prepare_files(run, decision)        # ...acting on it does
    assert decision.note == "config changed" and "epochs: 7 -> 1" in decision.why
    assert decision.action == "start" and "device" not in decision.why
    assert not ckpt.exists()
    ckpt.write_bytes(b"not a checkpoint")      # truncated or foreign: cannot resume either
    decision = runner.decision_for(run, force=False)
    assert decision.action == "start" and decision.discard_checkpoint
    assert "unreadable checkpoint" in decision.why


def test_one_rule_decides_skip_resume_or_start_over_for_the_engine_and_the_runner(tmp_path):
    """helpers.changes.decide on what a run's files hold (no files touched), and the
    engine's own skip (Experiment.completed) follows it."""
    from helpers.changes import decide
    from helpers.config import ExperimentConfig
    from helpers.experiment import Experiment
    from helpers.results import write_result
    cfg = ExperimentConfig(run_name="t-rule", model="vit", patch_size=8, dim=32, depth=1,
                           heads=2, dataset="synthetic", epochs=2,
                           results_dir=str(tmp_path)).resolved()
    config = cfg.to_dict()
    mine = recipe_id()                         # this code's results
    done = dict(status="complete", config=dict(config, device="cuda"), recipe=mine)  # other GPU
    changed = dict(status="complete", config=dict(config, epochs=3), recipe=mine)
    failed = dict(status="failed", config=config, recipe=mine,
                  reason="NonFiniteLossError:  loss\n nan")

    def table(result, checkpoint=None, force=False):
        if isinstance(checkpoint, dict):          # what a checkpoint of this code records
            checkpoint = dict(config=checkpoint, recipe=recipe_id())
        d = decide(config, result, checkpoint, force)
        return d.action, d.note, d.discard_checkpoint, d.set_aside_result

    assert table(done) == ("skip", "already complete", False, False)
    assert table(done, checkpoint=config) == ("skip", "already complete", False, False)
    assert table(done, force=True) == ("start", "forced", True, True)
    assert table(changed, checkpoint=config) == ("start", "config changed", True, False)
    assert "epochs: 3 -> 2" in decide(config, changed).why
    assert table(None) == ("start", "new", False, False)
    assert table(None, checkpoint=config) == ("resume", "resumed", False, False)
    assert table(None, checkpoint=dict(config, lr=9.0)) == ("start", "config changed", True,
                                                            False)
    older = dict(config=config, recipe="0" * 12)   # this config, another training recipe
    assert decide(config, None, older).action == "start" and decide(config, None, older).note \
        == "recipe changed" and f"recipe: {'0' * 12} -> {recipe_id()}" in decide(
            config, None, older).why
    assert table(None, checkpoint="unreadable checkpoint (EOFError)") == (
        "start", "checkpoint unusable", True, False)
    assert table(failed, checkpoint=config) == ("resume", "retried", False, False)
    assert "previous attempt failed: NonFiniteLossError: loss nan" in decide(config, failed).why
    assert table("Expecting value: line 1") == ("start", "retried", False, False)

    # The engine returns a complete result instead of training only when the rule skips it.
    path = write_result(dict(changed, run_name="t-rule"), str(tmp_path))
    assert Experiment(cfg).completed() is None
    write_result(dict(done, run_name="t-rule"), str(tmp_path))
    assert Experiment(cfg).completed()["status"] == "complete"
    assert os.path.basename(path) == "t-rule.json"


def test_each_dataset_gets_its_own_results_folder():
    """Synthetic or demo results never land among the CIFAR-100 rows."""
    def resolved(*argv):
        return runner.parse_settings(list(argv))
    assert resolved().results_dir == os.path.join("results", "cifar100")
    assert resolved("--dataset", "synthetic").results_dir == os.path.join("results", "synthetic")
    demo = resolved("--demo")
    assert demo.results_dir == os.path.join("results", "demo")
    assert demo.dataset == runner.demo.preset_for("auto").dataset
    assert demo.executed_dir == os.path.join(REPO_ROOT, "notebooks", "runs", "demo")
    assert report_paths("results/demo")["md"] == os.path.join(REPO_ROOT, "results/demo",
                                                              "report.md")
    assert report_paths("results/cifar100")["md"] == os.path.join(REPO_ROOT, "report.md")


def test_the_demo_gives_each_row_its_budget_unless_the_user_sets_one():
    def plan_for(*argv):
        settings = runner.parse_settings(["--demo", "--device", "cpu", *argv])
        return {run.name: run.cfg for run in runner.make_plan(runner.select(settings), settings)}
    demo, preset = plan_for(), runner.demo.CPU
    assert {cfg.dataset for cfg in demo.values()} == {preset.dataset}
    entries = {e["run_name"]: e for e in grid.grid()}
    for name, cfg in demo.items():
        train, test, epochs = preset.budget(entries[name])
        assert (cfg.train_subset, cfg.test_subset, cfg.epochs) == (train, test, epochs), name
    # One budget per problem, so its comparisons are like for like; Swin trains on small
    # inputs on a CPU.
    for problem in (1, 2):
        budgets = {(c.train_subset, c.test_subset, c.epochs) for c in demo.values()
                   if c.problem == problem}
        assert len(budgets) == 1, budgets
    assert demo["p2-swin_tiny-scratch"].img_size == 32
    assert demo["p2-swin_small-finetune"].train_subset == demo["p2-swin_small-scratch"].train_subset
    mine = plan_for("--train-subset", "64", "--test-subset", "32", "--epochs-p1", "1")
    assert (mine["p1-resnet18"].train_subset, mine["p1-resnet18"].test_subset) == (64, 32)
    assert mine["p1-resnet18"].epochs == 1
    assert mine["p2-swin_tiny-scratch"].epochs == preset.rows["p2-swin_tiny-scratch"][2]
    for flag, field in (("--train-subset", "train_subset"), ("--test-subset", "test_subset"),
                        ("--epochs-p2", "epochs")):                 # 0 is not "unset"
        with pytest.raises(SystemExit, match=f"{field}=0: must be a positive"):
            plan_for(flag, "0")


def test_a_bad_value_stops_the_grid_before_any_row_and_a_finished_run_stands(tmp_path, capsys):
    """A typo in a flag (here -p, or a negative epoch count) is refused before any row
    runs, naming the field and the rows; it writes nothing, and a row's finished result is
    left as it was (it used to be overwritten by a "failed" record)."""
    entries = [dict(TOY_VIT, run_name="t-a"), dict(TOY_VIT, run_name="t-b")]
    args = TINY_ARGS + dirs_args(tmp_path)
    assert runner.main(args + ["--only", "t-a"], entries=entries[:1]) == 0
    finished = (tmp_path / "results" / "t-a.json").read_bytes()
    assert read_result(tmp_path / "results" / "t-a.json")["status"] == "complete"
    entries.append(dict(run_name="t-s", model="swin_tiny", mode="scratch", label="Swin-Tiny"))
    for bad, message in ((["-p", "label_smoothing", "0.1x"],
                          "label_smoothing='0.1x': must be a number, not str (every row)"),
                         (["--epochs-p1", "-3"], "epochs=-3: must be a positive integer "
                                                 "(t-a, t-b)"),
                         (["--epochs-p1", "0"], "epochs=0: must be a positive integer "
                                                "(t-a, t-b)")):     # 0 is not "unset"
        with pytest.raises(SystemExit) as stop:
            runner.main(args + bad, entries=entries)
        assert message in str(stop.value) and "nothing was run" in str(stop.value)
        assert (tmp_path / "results" / "t-a.json").read_bytes() == finished
        assert not (tmp_path / "results" / "t-b.json").exists()
    assert "[t-b]" not in capsys.readouterr().out


def test_a_checkpoint_that_cannot_resume_is_dropped_and_the_row_trains_once_from_scratch(
        tmp_path, capsys):
    """A checkpoint with this row's config whose weights no longer fit the model (a code
    update renamed them, say): resuming fails with CheckpointUnusableError, so the runner
    deletes it and trains the row from scratch, instead of failing on it at every run."""
    import torch
    entries = [dict(TOY_VIT, run_name="t-stuck")]
    args = TINY_ARGS + dirs_args(tmp_path)
    [run] = runner.make_plan(entries, runner.parse_settings(args))
    ckpt = tmp_path / "results" / "checkpoints" / "t-stuck.pt"
    ckpt.parent.mkdir(parents=True)
    torch.save(dict(config=run.cfg.to_dict(), recipe=recipe_id(), epoch=1,
                    model={"renamed.weight": torch.zeros(1)}, history=[]), ckpt)
    assert runner.main(args, entries=entries) == 0
    out = capsys.readouterr().out
    assert "CheckpointUnusableError" in out and "training from scratch" in out
    r = read_result(tmp_path / "results" / "t-stuck.json")
    assert r["status"] == "complete" and [h["epoch"] for h in r["history"]] == [1]
    assert not ckpt.exists()


def test_seeds_run_skip_and_resume_per_seed(tmp_path, capsys):
    """--seeds: each (row, seed) is its own run, result file and checkpoint; seed 0 keeps
    the row's name. A later --seeds 0 1 2 skips the finished seeds and resumes seed 2."""
    import torch
    from helpers.experiment import Experiment
    from helpers.train import fit
    entries = [dict(TOY_VIT, run_name="t-s")]
    args = tiny_args(epochs_p1=2) + dirs_args(tmp_path)
    results = tmp_path / "results"
    assert runner.main(args + ["--seeds", "0", "1"], entries=entries) == 0
    r0, r1 = read_result(results / "t-s.json"), read_result(results / "t-s-seed1.json")
    assert (r0["config"]["seed"], r1["config"]["seed"]) == (0, 1)
    assert r0["history"][0]["train_loss"] != r1["history"][0]["train_loss"]
    capsys.readouterr()

    # Seed 2, interrupted after its first epoch (a disconnect): it has a checkpoint.
    [run] = runner.make_plan(entries, runner.parse_settings(args + ["--seeds", "2"]))
    assert (run.name, run.cfg.seed, run.cfg.run_name) == ("t-s-seed2", 2, "t-s-seed2")
    exp = Experiment(run.cfg)
    exp.prepare()

    def cut(history):
        if len(history) == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(exp.model, exp.data, exp.cfg, device=exp.device, precision=exp.precision,
            progress=False, checkpoint_path=exp.cfg.checkpoint_path, on_epoch=cut)
    saved = torch.load(exp.cfg.checkpoint_path, weights_only=True)

    before = [os.stat(results / n).st_mtime_ns for n in ("t-s.json", "t-s-seed1.json")]
    assert runner.main(args + ["--seeds", "0", "1", "2"], entries=entries) == 0
    # The grid's time record says what each (row, seed) needed: the finished seeds were
    # not executed this time, seed 2 was, and resumed.
    rows = {r["run"]: r for r in read_time_record(str(results))["rows"]}
    assert rows["t-s"]["wall_s"] is None and rows["t-s-seed1"]["wall_s"] is None
    assert rows["t-s-seed2"]["wall_s"] > 0 and rows["t-s-seed2"]["note"] == "resumed"
    assert [os.stat(results / n).st_mtime_ns for n in ("t-s.json", "t-s-seed1.json")] == before
    r2 = read_result(results / "t-s-seed2.json")
    assert [h["epoch"] for h in r2["history"]] == [1, 2]
    assert r2["history"][0] == saved["history"][0]               # resumed, not restarted


def test_bad_seeds_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="distinct non-negative"):
        runner.main(["--seeds", "0", "0", "--no-report"] + dirs_args(tmp_path))
    with pytest.raises(SystemExit, match="-p seed: .*--seeds"):
        runner.main(["-p", "seed", "3", "--no-report"] + dirs_args(tmp_path))


def test_force_trains_a_complete_row_again_and_keeps_the_old_result_aside(tmp_path):
    entries = [dict(TOY_VIT, run_name="t-f")]
    args = TINY_ARGS + dirs_args(tmp_path)
    results = tmp_path / "results"
    assert runner.main(args, entries=entries) == 0
    first = read_result(results / "t-f.json")
    assert runner.main(args + ["--force"], entries=entries) == 0
    [row] = read_time_record(str(results))["rows"]
    assert row["note"] == "forced" and row["wall_s"] > 0
    assert read_result(results / "t-f.json.replaced") == first
    again = read_result(results / "t-f.json")
    assert again["status"] == "complete" and again["history"] != first["history"]


def test_a_row_of_another_training_recipe_is_trained_again_unless_kept(tmp_path, capsys):
    """A complete result whose recipe (results.recipe_id) is not this code's was trained by
    other code: the runner trains it again and says why, unless --keep-recipes."""
    import json
    entries = [dict(TOY_VIT, run_name="t-recipe")]
    args = TINY_ARGS + dirs_args(tmp_path) + ["--no-notebooks"]
    path = tmp_path / "results" / "t-recipe.json"
    assert runner.main(args, entries=entries) == 0
    assert read_result(path)["recipe"] == recipe_id()

    def plant_old_recipe():
        r = json.loads(path.read_text())
        r["recipe"] = "0" * 12
        path.write_text(json.dumps(r))
        return mtime(path)
    planted = plant_old_recipe()
    capsys.readouterr()
    assert runner.main(args + ["--keep-recipes"], entries=entries) == 0
    assert mtime(path) == planted                                   # kept as it is
    assert "already complete" in capsys.readouterr().out
    assert runner.main(args, entries=entries) == 0
    assert f"recipe: {'0' * 12} -> {recipe_id()}" in capsys.readouterr().out
    assert read_result(path)["recipe"] == recipe_id() and mtime(path) != planted


def test_a_result_from_newer_code_stops_the_grid_before_anything_runs(tmp_path):
    import json
    from helpers.results import SCHEMA_VERSION
    entries = [dict(TOY_VIT, run_name="t-first"), dict(TOY_VIT, run_name="t-newer")]
    results = tmp_path / "results"
    results.mkdir()
    newer = results / "t-newer.json"
    newer.write_text(json.dumps(dict(run_name="t-newer", schema_version=SCHEMA_VERSION + 1)))
    with pytest.raises(SystemExit, match=f"t-newer.json has schema_version {SCHEMA_VERSION + 1}"):
        runner.main(TINY_ARGS + dirs_args(tmp_path) + ["--no-notebooks"], entries=entries)
    assert sorted(os.listdir(results)) == ["t-newer.json"]         # nothing trained or written


def test_what_the_rows_need_from_this_machine_is_checked_before_any_row(tmp_path):
    """A device this machine lacks or cannot name, and a .npz dataset that is missing or
    malformed, stop the command at once, naming the flag, with nothing written. Slurm's
    nodes are not this machine: their device is not checked here."""
    import torch
    (tmp_path / "bad.npz").write_text("not an archive")
    bad = [(["--device", "gpu"], "--device gpu: device='gpu': valid devices"),
           (["--dataset", str(tmp_path / "none.npz")], "none.npz': no such file"),
           (["--dataset", str(tmp_path / "bad.npz")], "not a readable .npz file")]
    if not torch.cuda.is_available():
        bad.append((["--device", "cuda"], "--device cuda: device='cuda' requested but CUDA"))
    args = TINY_ARGS + dirs_args(tmp_path)
    for flags, message in bad:
        with pytest.raises(SystemExit) as stop:
            runner.parse_settings(args + flags)
        assert message in str(stop.value), str(stop.value)
    assert runner.parse_settings(args + ["--device", "cuda", "--executor", "slurm",
                                         "--dataset", str(tmp_path / "none.npz")])


def test_the_check_of_a_relative_npz_reads_the_file_the_rows_read(tmp_path, monkeypatch):
    """A relative .npz path is the repository root's, for the pre-check as for the rows
    (they run there), even when HW6_HOME puts the outputs elsewhere: a file only under
    HOME is refused at once, not after every row has failed on it."""
    from helpers.data.arrays import save_npz_atomic
    from helpers.config import ConfigError, ExperimentConfig
    from helpers.data.datasets import make_synthetic
    ds = make_synthetic(20, 10, 4)
    (tmp_path / "home").mkdir()
    save_npz_atomic(str(tmp_path / "home" / "only-at-home.npz"), x_train=ds.x_train.numpy(),
                    y_train=ds.y_train.numpy(), x_test=ds.x_test.numpy(),
                    y_test=ds.y_test.numpy())
    monkeypatch.setenv("HW6_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises(ConfigError, match="no such .npz file"):       # what a row would say
        ExperimentConfig(dataset="only-at-home.npz").resolved()
    with pytest.raises(SystemExit, match="--dataset only-at-home.npz: .*no such file"):
        runner.parse_settings(TINY_ARGS + dirs_args(tmp_path) + ["--dataset", "only-at-home.npz"])


def test_a_report_this_machine_cannot_write_is_refused_before_any_row(tmp_path, monkeypatch):
    """On a bare GPU image (torch, torchvision, timm) the default --report would fail once
    every row had trained: the command stops at once instead, pointing to --no-report."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pandas" else real(name, *a))
    args = tiny_args()[:-1] + dirs_args(tmp_path)                  # without --no-report
    with pytest.raises(SystemExit, match="--report .*pandas not installed; add --no-report"):
        runner.parse_settings(args)
    assert not runner.parse_settings(args + ["--no-report"]).report
    assert runner.parse_settings(args + ["--list"]).list_only


def test_a_retraining_that_fails_leaves_the_finished_run_aside(tmp_path):
    """A complete row trained again under another config whose new training fails (here
    its loss diverges): the failure record does not replace the finished run without
    keeping it as <run>.json.replaced (results.write_result)."""
    entries = [dict(TOY_VIT, run_name="t-r")]
    args = TINY_ARGS + dirs_args(tmp_path)
    result = tmp_path / "results" / "t-r.json"
    assert runner.main(args, entries=entries) == 0
    finished = result.read_bytes()
    assert runner.main(args + ["-p", "lr", "1e30"], entries=entries) == 1
    assert read_result(result)["status"] == "failed"
    assert "training loss became nan" in read_result(result)["reason"]
    assert (tmp_path / "results" / "t-r.json.replaced").read_bytes() == finished
