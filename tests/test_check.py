"""benchmarks.check, the GPU check in one command, on a CPU at tiny sizes: it writes
the benchmark file, the grid time record and its summary with only torch, torchvision
and timm importable, and its projection adds up over the rows it measured."""
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from helpers.grid import EPOCHS
from helpers.paths import REPO_ROOT


# Modules a GPU machine lacks; stubs that refuse to import them come first on PYTHONPATH,
# so the check and every part's own process see them as absent.
ABSENT = ("papermill", "nbclient", "nbformat", "jupyter_client", "ipykernel", "thop", "pandas",
          "matplotlib", "submitit")


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    """The dry run, as CI runs it: every part, tiny sizes, the CPU, only torch,
    torchvision and timm importable. The budget leaves the parts room on a shared 2-core
    machine; parts that finish early do not wait for their deadline."""
    tmp = tmp_path_factory.mktemp("check")
    for name in ABSENT:
        (tmp / "absent" / name).mkdir(parents=True)
        (tmp / "absent" / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on the GPU machine')\n")
    script = f"""
from benchmarks import check
check.main(["--dry-run", "--budget-s", "1500", "--out-dir", {str(tmp / "out")!r}])
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp / "absent"), REPO_ROOT]))
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp), capture_output=True,
                          text=True, timeout=1800, env=env)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    return tmp / "out"


def smoke_is_written() -> bool:
    """Whether benchmarks/smoke.py (the smoke part) exists in this checkout."""
    return importlib.util.find_spec("benchmarks.smoke") is not None


def test_the_dry_run_goes_through_every_part_into_one_folder(check):
    summary = json.loads((check / "gpu_check.json").read_text())
    assert list(summary["parts"]) == ["smoke", "grid", "bench"]     # the order they ran in
    assert summary["parts"]["grid"]["status"] == summary["parts"]["bench"]["status"] == "done"
    (bench_file,) = check.glob("cpu-*.json")              # <device-slug>.json
    bench = json.loads(bench_file.read_text())
    runs = {r["run_name"]: r for r in bench["runs"]}
    assert set(runs) == {"p1-resnet18", "p1-vit-2L-2H-128", "p2-swin_tiny-scratch",
                         "p2-swin_tiny-finetune"}
    assert all(r["status"] == "complete" for r in runs.values()), runs
    # The bench part's stages merged per row: the compile stage's variant beside the eager
    # one, and the typical-loop reference and speed-up that only the eager stage measures.
    for name, r in runs.items():
        assert set(r["ours"]) == ({"eager", "compiled"} if name.startswith("p1-") else {"eager"})
    assert all(r.get("reference") and r.get("speedup") for r in runs.values())
    assert summary["parts"]["bench"]["note"] == "eager: 4 of 4 rows; compile_p1: 2 of 2 rows"
    record = json.loads((check / "grid" / "logs" / "grid_time.json").read_text())
    assert [row["status"] for row in record["rows"]] == ["complete"] * 4
    assert all(row["wall_s"] > row["train_s"] > 0 for row in record["rows"])
    # Nothing left behind: no checkpoints, no temporary folders.
    assert not list((check / "grid").glob("checkpoints/*.pt"))
    assert not list((check / "grid").glob("gpu-check-*"))


def test_the_smoke_part_runs_first_and_writes_its_file(check):
    if not smoke_is_written():
        pytest.skip("benchmarks/smoke.py is not in this checkout yet")
    summary = json.loads((check / "gpu_check.json").read_text())
    assert summary["parts"]["smoke"]["status"] == "done", summary["parts"]["smoke"]
    smoke = json.loads((check / "smoke.json").read_text())
    assert {name: c["status"] for name, c in smoke["checks"].items()} == dict.fromkeys(
        ("tf32", "t4_like_fp16", "cpu_checkpoint", "cpu_checkpoint_channels_last"), "ok")


def test_the_t4_memory_cap_names_the_gpu_as_torch_requires(monkeypatch):
    """The check's device is "cuda" with no index (resolve_device("auto")), which
    torch.cuda.set_per_process_memory_fraction refuses: the cap must name the GPU. Its
    CUDA calls stand in here, each validating the device as torch's own would."""
    if not smoke_is_written():
        pytest.skip("benchmarks/smoke.py is not in this checkout yet")
    from types import SimpleNamespace
    from torch.cuda._utils import _get_device_index
    from benchmarks import smoke
    caps = []
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda d: SimpleNamespace(total_memory=80 * 1024 ** 3))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda f, d: caps.append((f, _get_device_index(d))))
    with pytest.raises(ValueError, match="specified index"):      # what the cap is spared
        _get_device_index(torch.device("cuda"))
    assert smoke.cap_memory(torch.device("cuda"), smoke.T4_BYTES) == torch.device("cuda", 0)
    assert smoke.cap_memory(torch.device("cuda", 1), None) == torch.device("cuda", 1)
    assert caps == [(15 / 80, 0), (1.0, 1)]


def test_a_bench_stage_that_raises_leaves_the_next_stage_to_run(tmp_path, monkeypatch):
    """An error outside the per-measurement guards (the data path's DataLoader workers,
    say) ends that stage only: its note says so and the compile stage still runs."""
    from benchmarks import check as chk
    stages = []

    def eager_fails(settings, deadline=None):
        stages.append(settings.compile)
        if settings.compile == "off":
            raise RuntimeError("DataLoader worker (pid 7) is killed by signal: Bus error.")
        return dict(runs=[])
    monkeypatch.setattr(chk, "run_benchmark", eager_fails)
    settings = chk.CheckSettings(budget_s=60.0, dry_run=True, out_dir=str(tmp_path),
                                 started=time.time())
    entries = [dict(run_name="p1-resnet18", model="resnet18")]
    note = chk.bench(settings, torch.device("cpu"), str(tmp_path), entries,
                     time.monotonic() + 60)
    assert stages == ["off", "on"]
    assert note.startswith("eager: failed (RuntimeError: DataLoader worker") and \
        note.endswith("compile_p1: 0 of 1 rows")


def test_a_stale_checkpoint_in_the_grid_folder_does_not_break_a_rerun(tmp_path):
    """A row cut at the deadline by an earlier check (other sizes, so another config)
    must not make the next check's row fail with CheckpointMismatchError."""
    import torch
    from benchmarks import gridrows
    from benchmarks.settings import select_runs
    from helpers.checkpoint import save_checkpoint
    grid_dir = tmp_path / "grid"
    (grid_dir / "checkpoints").mkdir(parents=True)
    stale = grid_dir / "checkpoints" / "p1-vit-2L-2H-128.pt"
    save_checkpoint(str(stale), dict(config=dict(model="vit", epochs=99), epoch=1))
    outcomes, proj = gridrows.grid_rows(select_runs("vit-2L-2H-128"), gridrows.QUICK,
                                        str(grid_dir), torch.device("cpu"),
                                        time.monotonic() + 300)
    assert [o.status for o in outcomes] == ["complete"], outcomes
    assert not stale.exists() and proj["rows_projected"] == 1
    assert not list(grid_dir.glob("gpu-check-*"))


# ----------------------------------------------------------------------------- merging
def bench_row(run_name: str, measured: str, **ours) -> dict:
    """A benchmark row as one part writes it, with the variants `ours` (name -> img/s)."""
    from benchmarks.benchfile import judge_row
    timings = {name: dict(images_per_s=ips, eval_images_per_s=ips * 4, warmup_s=1.0,
                          eval_warmup_s=0.5, compile=name.startswith("compiled"))
               for name, ips in ours.items()}
    return judge_row(dict(run_name=run_name, label="ViT", model="vit", ours=timings,
                          measured=measured))


def merged_row(*parts: dict) -> dict:
    """The row after each part's file write merged it into what the earlier ones wrote."""
    from benchmarks.benchfile import merge_previous
    on_disk = dict(runs=[], data_path=None)
    for row in parts:
        result = dict(device_type="cuda", runs=[row], data_path=None)
        merge_previous(result, on_disk)
        on_disk = result
    (row,) = on_disk["runs"]
    return row


def test_a_row_merged_from_its_parts_holds_both_variants_in_either_order():
    """Parts measure a row's variants separately (eager, then compiled): the merged row
    holds both and is complete, whichever part came last."""
    name = "p1-vit-8L-8H-512"
    eager, compiled = bench_row(name, "t1", eager=1000.0), bench_row(name, "t2", compiled=2000.0)
    for parts in ((eager, compiled), (compiled, eager)):
        row = merged_row(*parts)
        assert row["status"] == "complete" and row["reason"] is None
        assert {k: t["images_per_s"] for k, t in row["ours"].items()} == dict(
            eager=1000.0, compiled=2000.0)
    # A part that measured only the compiled variant is not complete on its own.
    assert compiled["status"] == "failed" and "eager" in compiled["reason"]


def test_a_row_measured_again_keeps_what_only_the_first_measurement_took():
    from benchmarks.benchfile import merge_previous
    ref = dict(images_per_s=100.0)
    old = dict(runs=[dict(bench_row("p1-resnet18", "t1", eager=400.0), reference=ref)],
               data_path=[1])
    new = dict(device_type="cuda", runs=[bench_row("p1-resnet18", "t2", eager=500.0)],
               data_path=None)
    merge_previous(new, old)
    (row,) = new["runs"]
    assert row["ours"]["eager"]["images_per_s"] == 500.0 and row["reference"] == ref
    assert row["speedup"] == pytest.approx(500.0 / 100.0)       # the new figures, the old loop
    assert row["measured"] == "t2" and new["data_path"] == [1]
    cut = dict(device_type="cuda", data_path=None, runs=[dict(
        bench_row("p1-resnet18", "t3"), ours=dict(eager=dict(status="failed", reason="cut")))])
    merge_previous(cut, old)               # a failed re-measurement keeps the measured one
    assert cut["runs"][0]["ours"] == old["runs"][0]["ours"]
    assert cut["runs"][0]["status"] == "complete"


# ----------------------------------------------------------------------------- the grid
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
        assert p["train_s"] > 0 and p["eval_s"] > 0 and p["once_s"] >= 0
        assert p["total_s"] == pytest.approx(p["train_s"] + p["eval_s"] + p["once_s"])
        # The training share is the last epoch scaled by one factor per problem: the
        # default epochs over the subset the dry run trained on, never less than one epoch.
        scale = p["train_s"] / r["history"][-1]["epoch_time_s"]
        assert scale >= p["epochs"]
        per_epoch_image.setdefault(r["problem"], set()).add(round(scale, 6))
    assert all(len(s) == 1 for s in per_epoch_image.values()), per_epoch_image
    assert proj["total_s"] == pytest.approx(sum(p["total_s"] for p in proj["rows"].values()))


def fake_result(train=(5.0, 5.0), evals=(1.0, 1.0), n_train=50_000, n_test=10_000) -> dict:
    """A 2-epoch Problem 1 result whose epochs and evaluations took these seconds."""
    history = [dict(epoch=i + 1, epoch_time_s=t, eval_time_s=e, test_acc=1.0)
               for i, (t, e) in enumerate(zip(train, evals))]
    return dict(problem=1, history=history, dataset=dict(n_train=n_train, n_test=n_test))


def test_the_projection_charges_the_first_epochs_compiles_once():
    """The first epoch carries a 10 s training compile and the first evaluation a 4 s one:
    at the full dataset sizes the projection to 20 epochs is the 2 epochs as they ran,
    plus 18 steady epochs and evaluations; the compiles are in once_s, once."""
    from benchmarks.gridrows import project_row
    steady = project_row(fake_result(), wall_s=20.0)
    compiled = project_row(fake_result(train=(15.0, 5.0), evals=(5.0, 1.0)), wall_s=34.0)
    assert EPOCHS[1] == 20
    assert steady["total_s"] == pytest.approx(20.0 + 18 * (5.0 + 1.0))
    assert compiled["total_s"] == pytest.approx(34.0 + 18 * (5.0 + 1.0))
    assert compiled["train_s"] == steady["train_s"] == pytest.approx(20 * 5.0)
    assert compiled["eval_s"] == steady["eval_s"] == pytest.approx(20 * 1.0)
    assert compiled["once_s"] - steady["once_s"] == pytest.approx(10.0 + 4.0)
    # A last epoch slower than the first (noise on a shared machine) charges no negative
    # one-off time.
    noisy = project_row(fake_result(train=(5.0, 6.0)), wall_s=12.0)
    assert noisy["once_s"] == 0.0 and noisy["train_s"] == pytest.approx(20 * 6.0)


def test_a_projected_row_scales_with_its_epoch_time_images_and_wall_time():
    from benchmarks.gridrows import project_row
    r = fake_result(train=(3.0, 2.0), evals=(1.0, 0.5), n_train=1000, n_test=500)
    base = project_row(r, wall_s=10.0)
    slower = project_row(fake_result(train=(3.0, 4.0), evals=(1.0, 0.5), n_train=1000,
                                     n_test=500), wall_s=12.0)
    fewer = project_row(dict(r, dataset=dict(n_train=500, n_test=500)), wall_s=10.0)
    longer = project_row(r, wall_s=13.0)
    assert base["epochs"] == EPOCHS[1] and base["train_s"] > 2.0 * EPOCHS[1]
    assert slower["train_s"] == pytest.approx(2 * base["train_s"])      # linear in epoch time
    assert slower["eval_s"] == base["eval_s"]
    assert fewer["train_s"] == pytest.approx(2 * base["train_s"])       # inverse in images
    assert longer["once_s"] - base["once_s"] == pytest.approx(3.0)      # one-off: the rest
    assert longer["train_s"] == base["train_s"] and longer["eval_s"] == base["eval_s"]
    assert base["once_s"] == pytest.approx(10.0 - 2 * 2.0 - 2 * 0.5)


# ----------------------------------------------------------------------------- deadlines
def test_a_part_past_its_deadline_is_killed_and_the_next_part_runs(tmp_path):
    """A part that sleeps past its deadline (as a backward compile that SIGALRM cannot cut
    would) is killed there, with the process it started, and recorded as cut, keeping what
    it wrote; gpu_check.json holds that before the next part starts."""
    from benchmarks.check import CheckSettings, Summary
    check = CheckSettings(budget_s=8.0, out_dir=str(tmp_path), started=time.time())
    summary = Summary(check, torch.device("cpu"), ends=dict(sleepy=0.5, next=1.0))
    sleepy = tmp_path / "sleepy.py"      # writes, starts a process of its own, oversleeps
    sleepy.write_text("import subprocess, sys, time\n"
                      "open(sys.argv[1] + '/wrote-before.txt', 'w').write('kept')\n"
                      "p = subprocess.Popen([sys.executable, '-c', 'import time; "
                      "time.sleep(60)'])\n"
                      "open(sys.argv[1] + '/grandchild.pid', 'w').write(str(p.pid))\n"
                      "time.sleep(60)\n")
    summary.run_in_child("sleepy", [sys.executable, str(sleepy), str(tmp_path)])
    cut_at = time.monotonic()
    assert abs(cut_at - summary.deadline("sleepy")) < 1.0
    assert summary.data["parts"]["sleepy"]["status"] == "cut at its deadline"
    assert (tmp_path / "wrote-before.txt").read_text() == "kept"
    pid = int((tmp_path / "grandchild.pid").read_text())
    time.sleep(0.2)                        # gone, or a zombie nobody has reaped yet
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    reads_summary = ("import json, sys; d = json.load(open(sys.argv[1]));"
                     "s = d['parts']['sleepy']['status'];"
                     "print(json.dumps(dict(status='done', note=s)))")
    summary.run_in_child("next", [sys.executable, "-c", reads_summary, summary.path])
    assert time.monotonic() - cut_at < 1.0 + 3.0          # started at once (python's start-up)
    assert summary.data["parts"]["next"] == dict(
        status="done", note="cut at its deadline",
        seconds=summary.data["parts"]["next"]["seconds"])
    on_disk = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(on_disk["parts"]) == ["sleepy", "next"]


def test_a_check_stopped_by_sigterm_kills_its_running_part(tmp_path):
    """`timeout` stops the check with SIGTERM: the part it is running (in its own session)
    and what that started are killed with it, not left holding the GPU."""
    sleepy = tmp_path / "sleepy.py"
    sleepy.write_text("import subprocess, sys, time\n"
                      "p = subprocess.Popen([sys.executable, '-c', 'import time; "
                      "time.sleep(60)'])\n"
                      "open(sys.argv[1] + '/grandchild.pid', 'w').write(str(p.pid))\n"
                      "time.sleep(60)\n")
    controller = ("import sys, time, torch\n"
                  "from benchmarks.check import CheckSettings, Summary, stop_on_sigterm\n"
                  "stop_on_sigterm()\n"
                  f"check = CheckSettings(budget_s=60.0, out_dir={str(tmp_path)!r}, "
                  "started=time.time())\n"
                  "summary = Summary(check, torch.device('cpu'), ends=dict(sleepy=1.0))\n"
                  f"summary.run_in_child('sleepy', [sys.executable, {str(sleepy)!r}, "
                  f"{str(tmp_path)!r}])\n")
    proc = subprocess.Popen([sys.executable, "-c", controller], cwd=REPO_ROOT)
    pid_file = tmp_path / "grandchild.pid"
    for _ in range(300):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    proc.terminate()
    assert proc.wait(timeout=20) == 128 + 15
    pid = int(pid_file.read_text())
    time.sleep(0.2)                        # gone, or a zombie nobody has reaped yet
    alive = os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    if alive:
        os.kill(pid, 9)
    assert not alive


def test_a_bad_budget_or_model_is_refused_before_anything_runs(tmp_path):
    from benchmarks import check
    with pytest.raises(SystemExit):
        check.main(["--budget-s", "-5", "--out-dir", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="matches no run"):
        check.main(["--models", "vgg", "--out-dir", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
