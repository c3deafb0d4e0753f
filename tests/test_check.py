"""helpers.bench.check, the GPU check in one command, on a CPU at tiny sizes: it writes
the benchmark file, the grid time record and its summary with only torch, torchvision
and timm importable, and its projection adds up over the rows it measured."""
import json
import os
import subprocess
import sys

import pytest

from helpers.grid import EPOCHS
from helpers.paths import REPO_ROOT


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    """The dry run, as CI runs it: every part, tiny sizes, the CPU, only torch,
    torchvision and timm importable. The budget leaves part 1 (a quarter of it) room on
    a shared 2-core machine; parts that finish early do not wait for their deadline."""
    tmp = tmp_path_factory.mktemp("check")
    script = f"""
import sys
for name in ("papermill", "nbclient", "nbformat", "jupyter_client", "ipykernel", "thop",
             "pandas", "matplotlib", "submitit"):
    sys.modules[name] = None                      # `import name` now raises ImportError
from helpers.bench import check
check.main(["--dry-run", "--budget-s", "1500", "--out-dir", {str(tmp / "out")!r}])
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp), capture_output=True,
                          text=True, timeout=1800, env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    return tmp / "out"


def test_the_dry_run_goes_through_every_part_into_one_folder(check):
    (bench_file,) = check.glob("cpu-*.json")              # <device-slug>.json
    bench = json.loads(bench_file.read_text())
    runs = {r["run_name"]: r for r in bench["runs"]}
    assert set(runs) == {"p1-resnet18", "p1-vit-2L-2H-128", "p2-swin_tiny-scratch",
                         "p2-swin_tiny-finetune"}
    assert all(r["status"] == "complete" for r in runs.values()), runs
    # Parts 1-3 merged per row: the compile parts' variants beside part 3's eager ones,
    # and the typical-loop reference and speed-up that only part 3 measures.
    for name in ("p1-resnet18", "p1-vit-2L-2H-128"):
        assert {"eager", "compiled"} <= set(runs[name]["ours"])
    assert {"eager", "fused-eager", "compiled-blocks", "fused-compiled-blocks"} <= set(
        runs["p2-swin_tiny-scratch"]["ours"])
    assert all(r.get("reference") and r.get("speedup") for r in runs.values())
    summary = json.loads((check / "gpu_check.json").read_text())
    assert {p: summary["parts"][p]["status"] for p in summary["parts"]} == dict(
        compile_swin="done", compile_p1="done", bench="done", grid="done")
    record = json.loads((check / "grid" / "logs" / "grid_time.json").read_text())
    assert [row["status"] for row in record["rows"]] == ["complete"] * 4
    assert all(row["phases"] and row["outside_run_s"] >= 0 for row in record["rows"])
    # Nothing left behind: no checkpoints, no temporary folders.
    assert not list((check / "grid").glob("checkpoints/*.pt"))
    assert not list((check / "grid").glob("gpu-check-*"))


def test_a_stale_checkpoint_in_the_grid_folder_does_not_break_a_rerun(tmp_path):
    """A row cut at the deadline by an earlier check (other sizes, so another config)
    must not make the next check's row fail with CheckpointMismatchError."""
    import torch
    from helpers.bench import check
    from helpers.bench.runs import select_runs
    from helpers.checkpoint import save_checkpoint
    grid_dir = tmp_path / "grid"
    (grid_dir / "checkpoints").mkdir(parents=True)
    stale = grid_dir / "checkpoints" / "p1-vit-2L-2H-128.pt"
    save_checkpoint(str(stale), dict(config=dict(model="vit", epochs=99), epoch=1))
    import time
    outcomes, proj = check.grid_rows(select_runs("vit-2L-2H-128"), check.QUICK, str(grid_dir),
                                     torch.device("cpu"), time.monotonic() + 300)
    assert [o.status for o in outcomes] == ["complete"], outcomes
    assert not stale.exists() and proj["rows_projected"] == 1
    assert not list(grid_dir.glob("gpu-check-*"))


def test_a_row_measured_again_keeps_what_only_the_first_measurement_took():
    from helpers.bench.render import merge_previous
    ref = dict(images_per_s=100.0)
    old = dict(runs=[dict(run_name="p1-resnet18", status="complete", primary="eager",
                          ours=dict(eager=dict(images_per_s=400.0)), reference=ref,
                          speedup=4.0, measured="t1")], data_path=[1])
    new = dict(runs=[dict(run_name="p1-resnet18", status="complete", primary="compiled",
                          ours=dict(compiled=dict(images_per_s=500.0)), measured="t2")],
               data_path=None)
    merge_previous(new, old)
    (row,) = new["runs"]
    assert set(row["ours"]) == {"eager", "compiled"} and row["reference"] == ref
    assert row["speedup"] == pytest.approx(500.0 / 100.0)
    assert row["measured_parts"] == ["t1", "t2"] and new["data_path"] == [1]
    failed = dict(runs=[dict(run_name="p1-resnet18", status="failed")], data_path=None)
    merge_previous(failed, old)                       # a failed re-measurement keeps the old
    assert failed["runs"][0]["ours"] == old["runs"][0]["ours"]


def test_the_projection_adds_up_over_the_rows_that_completed(check):
    summary = json.loads((check / "gpu_check.json").read_text())
    record = json.loads((check / "grid" / "logs" / "grid_time.json").read_text())
    proj = summary["projection"]
    complete = {row["run"] for row in record["rows"] if row["status"] == "complete"}
    assert set(proj["rows"]) == complete and proj["rows_projected"] == len(complete) == 4
    assert proj["rows_in_grid"] == len(record["rows"])
    per_epoch_image = {}
    for name, p in proj["rows"].items():
        r = json.loads((check / "grid" / f"{name}.json").read_text())
        assert p["epochs"] == EPOCHS[r["problem"]]
        assert p["train_s"] > 0 and p["eval_s"] > 0 and p["once_s"] > 0
        assert p["total_s"] == pytest.approx(p["train_s"] + p["eval_s"] + p["once_s"])
        # The training share is the measured epoch scaled by one factor per problem: the
        # default epochs over the subset the dry run trained on, never less than one epoch.
        scale = p["train_s"] / r["epoch_time_s"]
        assert scale >= p["epochs"]
        per_epoch_image.setdefault(r["problem"], set()).add(round(scale, 6))
    assert all(len(s) == 1 for s in per_epoch_image.values()), per_epoch_image
    assert proj["total_s"] == pytest.approx(sum(p["total_s"] for p in proj["rows"].values()))


def test_a_projected_row_scales_with_its_epoch_time_images_and_wall_time():
    from helpers.bench.check import project_row
    r = dict(problem=1, epoch_time_s=2.0, history=[{}, {}],
             phases=dict(train_s=4.0, eval_s=1.0), dataset=dict(n_train=1000, n_test=500))
    base = project_row(r, wall_s=10.0)
    slower = project_row(dict(r, epoch_time_s=4.0), wall_s=10.0)
    fewer = project_row(dict(r, dataset=dict(n_train=500, n_test=500)), wall_s=10.0)
    longer = project_row(r, wall_s=13.0)
    assert base["epochs"] == EPOCHS[1] and base["train_s"] > r["epoch_time_s"] * EPOCHS[1]
    assert slower["train_s"] == pytest.approx(2 * base["train_s"])      # linear in epoch time
    assert slower["eval_s"] == base["eval_s"]
    assert fewer["train_s"] == pytest.approx(2 * base["train_s"])       # inverse in images
    assert longer["once_s"] - base["once_s"] == pytest.approx(3.0)      # one-off: the rest
    assert longer["train_s"] == base["train_s"] and longer["eval_s"] == base["eval_s"]
    assert base["once_s"] == pytest.approx(10.0 - 4.0 - 1.0)


def test_a_bad_budget_or_model_is_refused_before_anything_runs(tmp_path):
    from helpers.bench import check
    with pytest.raises(SystemExit):
        check.main(["--budget-s", "-5", "--out-dir", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="matches no run"):
        check.main(["--models", "vgg", "--out-dir", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
