"""Scale-out: rows as submitit jobs (local executor on this CPU, Slurm through submitit's
own mocked cluster), lock files in the results folder, requeue, and the in-process mode.

The rows are toy ViTs on 64 synthetic images; every local job is a fresh Python process
(several seconds to import torch), so each test submits few of them.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import runner
from helpers.results import read_result
from helpers.atomic import splice
from helpers.gridrun import read_time_record
from helpers.runner import demo_readme, jobs

TOY = dict(model="vit", label="ViT (toy)", patch_size=8, dim=32, depth=1, heads=2)
ENTRIES = [dict(TOY, run_name="t-a"), dict(TOY, run_name="t-b", dim=48)]


def args_for(tmp_path, *extra, epochs=2):
    return ["--dataset", "synthetic", "--train-subset", "64", "--test-subset", "32",
            "--epochs-p1", str(epochs), "--batch-size", "32", "--no-report",
            "--results-dir", str(tmp_path / "results"), *extra]


def planned(argv, entries):
    settings = runner.parse_settings(argv)
    return settings, runner.make_plan(entries, settings)


def trained(result):
    """What training produced, without times, dates and where it ran (or was written)."""
    keep = ("train_loss", "train_acc", "test_loss", "test_acc", "epoch")
    config = {k: v for k, v in result["config"].items() if k != "results_dir"}
    return dict(config=config, params=result["params"], flops=result["flops"],
                test_acc=result["test_acc"],
                history=[{k: h[k] for k in keep} for h in result["history"]])


def test_local_executor_gives_each_job_its_own_gpu_and_runs_them_at_once(tmp_path,
                                                                          monkeypatch):
    """Two visible "GPUs" (this machine has none, so the runs fall back to the CPU): two
    slots, so both rows run at the same time, each shown only the GPU of its slot."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    argv = args_for(tmp_path, "--executor", "local", "--no-notebooks", "--device", "auto")
    assert runner.main(argv, entries=ENTRIES) == 0
    results = tmp_path / "results"
    # Each job's output is submitit's <job id>_0_log.out.
    text = [p.read_text() for p in (results / "logs" / "submitit").glob("*_log.out")]
    pinned = sorted(line.rsplit("=", 1)[1] for t in text for line in t.splitlines()
                    if "CUDA_VISIBLE_DEVICES=" in line)
    # Both slots were taken: the second job locked slot 1 while slot 0 was held, so the
    # two rows overlapped in time.
    assert pinned == ["3", "5"], text
    for n in ("t-a", "t-b"):
        assert read_result(results / f"{n}.json")["status"] == "complete"
    assert not os.listdir(results / "locks")           # every lock released


def test_jobs_without_notebooks_match_the_sequential_notebook_runs(tmp_path):
    """The same rows, once the default way (sequential, one notebook each) and once as
    local jobs that train in their own process: identical results."""
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert runner.main(args_for(seq, "--device", "cpu", "--executed-dir", str(seq / "nb")),
                       entries=ENTRIES) == 0
    assert runner.main(args_for(par, "--device", "cpu", "--executor", "local",
                                "--no-notebooks", "--executed-dir", str(par / "nb")),
                       entries=ENTRIES) == 0
    for n in ("t-a", "t-b"):
        a = read_result(seq / "results" / f"{n}.json")
        b = read_result(par / "results" / f"{n}.json")
        assert a["status"] == b["status"] == "complete"
        assert trained(a) == trained(b)
    assert (seq / "nb" / "t-a.ipynb").exists()
    assert not (par / "nb").exists()                               # no notebook run


def test_a_locked_row_is_left_to_its_worker_and_a_dead_workers_lock_is_taken_over(
        tmp_path, capsys):
    """A live worker's lock is respected by a plain sequential run (which takes no lock
    of its own) and by a job; a job takes over the lock of a worker that has died."""
    argv = args_for(tmp_path, "--device", "cpu", "--no-notebooks")
    results = tmp_path / "results"
    lock = results / "locks" / "t-a.lock"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    settings, [run] = planned(argv + ["--executor", "local"], ENTRIES[:1])
    spec = jobs.JobSpec(run, None, False)
    try:
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps(dict(what="t-a", host=socket.gethostname(),
                                        pid=other.pid, started="earlier", token="x")))
        assert runner.main(argv, entries=ENTRIES[:1]) == 0
        out = capsys.readouterr().out
        assert "locked by another worker" in out and f"pid {other.pid}" in out
        assert jobs.work(spec).status == "busy"
        assert "locked by another worker" in capsys.readouterr().out
        assert not (results / "t-a.json").exists()         # not trained twice
        assert json.loads(lock.read_text())["pid"] == other.pid   # and not touched
    finally:
        other.kill()
        other.wait()
    assert jobs.work(spec).status == "complete"           # the job the row is requeued to
    out = capsys.readouterr().out
    assert "taking over a stale lock" in out and f"process {other.pid}" in out
    assert read_result(results / "t-a.json")["status"] == "complete"
    assert not lock.exists()


def test_locks_are_exclusive_and_stale_only_when_their_owner_is_gone(tmp_path, monkeypatch):
    path = str(tmp_path / "x.lock")
    first = jobs.take_lock(path, "x")
    assert isinstance(first, jobs.Lock)
    second = jobs.take_lock(path, "x")                    # same process, still held
    assert second["token"] == first.holder["token"]
    first.release()
    assert not os.path.exists(path)
    # A lock that cannot be read (being written this instant, or damaged) is left alone.
    with open(path, "w"):
        pass
    assert not isinstance(jobs.take_lock(path, "x"), jobs.Lock)
    assert os.path.exists(path) and os.path.getsize(path) == 0

    # A Slurm task requeued runs as the same job id: it takes over its own lock; another
    # task of the array does not, while squeue still lists the owner.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    squeue = bin_dir / "squeue"
    squeue.write_text("#!/bin/sh\necho RUNNING\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    holder = dict(host="node07", pid=123, scheduler="slurm", job_id="77_3", started="t",
                  token="y")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert "requeued" in jobs.stale_reason(holder)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "4")
    assert jobs.stale_reason(holder) is None
    squeue.write_text("#!/bin/sh\nexit 0\n")               # no longer in the queue
    assert "has ended" in jobs.stale_reason(holder)


def test_a_job_that_is_preempted_is_requeued_and_resumes_from_its_checkpoint(tmp_path):
    """submitit's preemption signal reaches the job after its first checkpoint: the job
    is requeued by submitit (RowJob is Checkpointable) and resumes, not restarts."""
    epochs = 40
    settings, plan = planned(args_for(tmp_path, "--device", "cpu", "--executor", "local",
                                      "--no-notebooks", epochs=epochs), ENTRIES[:1])
    _, submitted, specs = jobs.submit(plan, settings)
    (job,), results = submitted, tmp_path / "results"
    checkpoint, lock = results / "checkpoints" / "t-a.pt", results / "locks" / "t-a.lock"
    deadline = time.time() + 120
    while not checkpoint.exists():
        assert not job.done(), job.stderr()
        assert time.time() < deadline, "no checkpoint written"
        time.sleep(0.05)
    pid = json.loads(lock.read_text())["pid"]               # the job's own process
    os.kill(pid, signal.SIGUSR2)                             # what Slurm sends before preempting
    outcome = jobs.job_outcome(job, specs[0])
    assert outcome.status == "complete", outcome.reason
    r = read_result(results / "t-a.json")
    segments = [h["segment"] for h in r["history"]]
    assert [h["epoch"] for h in r["history"]] == list(range(1, epochs + 1))
    assert segments[0] == 1 and segments[-1] == 2, segments   # resumed after the requeue
    assert "Requeued" in job.stderr() or "requeu" in job.stdout().lower()


def test_slurm_submits_one_array_and_each_task_runs_its_row(tmp_path, capsys):
    """Against submitit's own mocked Slurm: the sbatch script asks for what the command
    line says (one GPU per task), and a task run as Slurm would run it trains its row."""
    from submitit.core import submission
    from submitit.slurm.test_slurm import mocked_slurm
    argv = args_for(tmp_path, "--device", "auto", "--executor", "slurm", "--no-notebooks",
                    "--slurm-param", "partition", "gpu", "--timeout-min", "30",
                    "--parallel", "2", "--slurm-param", "account", "lab",
                    "--slurm-param", "sbatch:reservation", "res1")
    settings, plan = planned(argv, ENTRIES)
    assert settings.wait is False                          # slurm: no waiting by default
    with mocked_slurm() as mock:
        _, submitted, specs = jobs.submit(plan, settings)
        assert [j.job_id for j in submitted] == ["12_0", "12_1"]    # one array
        script = submitted[0].paths.submission_file.read_text()
        for line in ("--array=0-1%2", "--partition=gpu", "--gpus-per-node=1", "--time=30",
                     "--account=lab", "--reservation=res1", "--signal=USR2"):
            assert f"#SBATCH {line}" in script, line
        for job in submitted:
            with mock.job_context(job.job_id):
                submission.process_job(job.paths.folder)
        outcomes = [jobs.job_outcome(j, s) for j, s in zip(submitted, specs)]
        # Runs told to train on the CPU ask Slurm for no GPU.
        on_cpu, cpu_plan = planned(argv + ["--device", "cpu", "--force"], ENTRIES[:1])
        _, (cpu_job,), _ = jobs.submit(cpu_plan, on_cpu)
        assert "--gpus-per-node" not in cpu_job.paths.submission_file.read_text()
    assert [o.status for o in outcomes] == ["complete", "complete"]
    assert "[t-b] slurm job 12_1 on " in capsys.readouterr().out


def test_a_misspelled_slurm_parameter_is_refused_naming_it(tmp_path):
    from submitit.slurm.test_slurm import mocked_slurm
    argv = args_for(tmp_path, "--executor", "slurm", "--no-notebooks",
                    "--slurm-param", "acount", "lab")
    settings, plan = planned(argv, ENTRIES)
    with mocked_slurm(), pytest.raises(SystemExit, match=r"--slurm-param.*'acount'"):
        jobs.submit(plan, settings)


def test_slurm_off_a_cluster_is_refused_with_submitits_reason(tmp_path, monkeypatch):
    settings, plan = planned(args_for(tmp_path, "--executor", "slurm", "--no-notebooks"),
                             ENTRIES)
    monkeypatch.setenv("PATH", str(tmp_path))                 # no srun, no sbatch
    with pytest.raises(SystemExit, match=r"--executor slurm: .*srun"):
        jobs.submit(plan, settings)


@pytest.mark.parametrize("extra, message", [
    (["--executor", "local", "--parallel", "0"], "--parallel 0: must be at least 1"),
    (["--executor", "slurm", "--timeout-min", "-5"], "--timeout-min -5: must be at least 1"),
    (["--slurm-param", "partition", "gpu"], "add --executor slurm"),
    (["--executor", "local", "--slurm-param", "mem", "8GB"], "add --executor slurm"),
    (["--wait"], "options of --executor"),
    (["--executor", "slurm", "--slurm-param", "time", "60"], "time: set by --timeout-min"),
    (["--executor", "slurm", "--slurm-param", "sbatch:array-parallelism", "4"],
     "set by --parallel"),
])
def test_scale_out_mistakes_are_refused_before_anything_runs(tmp_path, extra, message):
    with pytest.raises(SystemExit, match=message):
        runner.main(args_for(tmp_path, *extra), entries=ENTRIES)
    assert not (tmp_path / "results").exists()


def test_the_runner_records_the_grid_time_and_the_readme_paragraph_comes_from_it(tmp_path):
    from helpers import report
    argv = args_for(tmp_path, "--device", "cpu", "--no-notebooks", "--dataset", "synthetic-10")
    argv.remove("--no-report")
    assert runner.main(argv, entries=ENTRIES) == 0
    results = tmp_path / "results"
    rec = read_time_record(str(results))
    assert [r["run"] for r in rec["rows"]] == ["t-a", "t-b"]
    assert rec["total_s"] >= rec["rows_s"] >= sum(r["wall_s"] for r in rec["rows"]) > 0
    for r in rec["rows"]:
        assert 0 < r["train_s"] + r["eval_s"] < r["wall_s"]
    header = report.build_report(str(results), None).sections()["header"]
    assert f"**Grid wall time:** {rec['rows_s']:.0f} s for the 2 row(s)" in header
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- demo:start -->\nold\n<!-- demo:end -->\nrest\n")
    block = splice(str(readme), "demo", demo_readme.demo_summary(str(results)))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
    minutes, seconds = divmod(round(rec["total_s"]), 60)
    assert f"**{minutes} min {seconds:02d} s**" in block
    assert "10 synthetic classes (chance 10 %)" in block


def test_no_notebooks_needs_neither_jupyter_nor_thop(tmp_path):
    """--no-notebooks runs where only torch, torchvision and timm are installed (a GPU
    image, a cluster node): papermill, Jupyter, thop and submitit are made unimportable."""
    script = f"""
import sys
for name in ("papermill", "nbclient", "nbformat", "jupyter_client", "ipykernel", "thop",
             "submitit"):
    sys.modules[name] = None                      # `import name` now raises ImportError
from helpers import runner
from helpers.results import read_result
entries = {ENTRIES[:1]!r}
argv = {args_for(tmp_path, "--device", "cpu", "--no-notebooks")!r}
assert runner.main(argv, entries=entries) == 0
r = read_result({str(tmp_path / "results" / "t-a.json")!r})
assert r["status"] == "complete" and r["macs_thop"] is None and r["flops"] > 0, r
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=jobs.REPO_ROOT))
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    assert "thop is not installed" in done.stderr
