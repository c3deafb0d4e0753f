"""Kernels started ahead of their rows (--warm-kernels) and the split of a row's time
outside its run: a warm kernel changes no number and no execution count, a kernel whose
imports fail is dropped for a fresh one, no kernel outlives the runner, and the record
splits what lies outside Experiment.run() into kernel start and notebook cells."""
import json
import os

import pytest
from jupyter_client import BlockingKernelClient
from jupyter_core.utils import run_sync

from helpers import runner
from helpers.paths import REPO_ROOT
from helpers.report.header import PHASE_LABELS, time_split_md
from report_fixtures import table_cells
from helpers.results import PHASES, read_result
from helpers.runner.kernels import KernelPool, WarmKernel, want_warm_kernels

TOY_VIT = dict(model="vit", label="ViT (toy)", patch_size=8, dim=32, depth=1, heads=2)


def grid_args(out, warm):
    return ["--dataset", "synthetic-10", "--train-subset", "128", "--test-subset", "64",
            "--epochs-p1", "2", "--batch-size", "32", "--device", "cpu", "--no-report",
            "--results-dir", str(out / "results"), "--executed-dir", str(out / "executed"),
            "--warm-kernels", warm]


def alive(km) -> bool:
    return run_sync(km.is_alive)()


def kernel_processes() -> set[int]:
    """ipykernel processes whose parent is this test process, from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == os.getpid() and b"ipykernel" in cmd:
            found.add(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="counts kernel processes via /proc")
def test_a_row_on_a_warm_kernel_is_the_row_on_a_cold_one(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    entries = [dict(TOY_VIT, run_name="t-first"), dict(TOY_VIT, run_name="t-second", dim=64)]
    assert runner.main(grid_args(tmp_path / "warm", "on"), entries=entries) == 0
    assert kernel_processes() == set()                 # none left running, none warmed idle
    assert runner.main(grid_args(tmp_path / "cold", "off"), entries=entries[1:]) == 0

    record = json.load(open(tmp_path / "warm" / "results" / "logs" / "grid_time.json"))
    assert record["settings"]["warm_kernels"] is True
    assert [r["warm_kernel"] for r in record["rows"]] == [False, True]   # the first is cold
    warm = read_result(tmp_path / "warm" / "results" / "t-second.json")
    cold = read_result(tmp_path / "cold" / "results" / "t-second.json")
    for key in ("test_acc", "train_acc", "params", "flops"):
        assert warm[key] == cold[key], key
    fields = ("train_loss", "train_acc", "test_loss", "test_acc")
    assert [[h[f] for f in fields] for h in warm["history"]] == \
        [[h[f] for f in fields] for h in cold["history"]]
    nb = json.load(open(tmp_path / "warm" / "executed" / "t-second.ipynb"))
    counts = [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1))   # the silent imports left no mark

    # The notebook's cell clocks bracket its Experiment.run(), inside the row's wall time:
    # starting a kernel (or taking a warmed one) and the cells around the run both take
    # time, so neither part of the split is clamped to zero.
    for r in record["rows"]:
        assert r["kernel_s"] > 0 and r["cells_outside_run_s"] > 0, r
    cold_record = json.load(open(tmp_path / "cold" / "results" / "logs" / "grid_time.json"))
    assert cold_record["rows"][0]["warm_kernel"] is False
    assert cold_record["settings"]["warm_kernels"] is False


def test_a_warm_kernel_has_imported_ahead_without_counting_an_execution():
    # modules nothing else here imports, and one that is not installed (as thop may not be)
    kernel = WarmKernel(imports=("wave", "no_such_module_for_this_test", "colorsys"))
    km = kernel.take()
    assert km is not None and alive(km)
    kc = BlockingKernelClient()
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels()
    try:
        outputs = []
        reply = kc.execute_interactive("import sys; print(sorted({'wave', 'colorsys'} & "
                                       "set(sys.modules)))", timeout=60,
                                       output_hook=lambda m: outputs.append(m))
        text = "".join(m["content"].get("text", "") for m in outputs
                       if m["msg_type"] == "stream")
        assert text.strip() == "['colorsys', 'wave']"
        assert reply["content"]["execution_count"] == 1
    finally:
        kc.stop_channels()
        from helpers.notebook_exec import shutdown_kernel
        shutdown_kernel(km)
    assert not alive(km)


def test_a_warm_kernel_whose_imports_fail_is_dropped_and_the_pool_closes_what_it_warmed():
    pool = KernelPool(imports=("helpers.no_such_module_for_this_test",))   # installed, broken
    pool.more = True
    assert pool.take() is None                 # nothing warmed for the first row
    pending = pool.pending
    assert pending is not None                 # ... but the next row's kernel is starting
    assert pool.take() is None                 # its imports failed: dropped, not handed over
    assert not alive(pending.km)
    left = pool.pending
    pool.close()                               # the grid ends: the kernel warmed for nothing
    assert pool.pending is None and not alive(left.km)


def test_warm_kernels_are_on_for_accelerators_only_unless_asked(tmp_path, capsys):
    assert want_warm_kernels("auto", "cpu") is False
    assert want_warm_kernels("on", "cpu") is True
    assert want_warm_kernels("off", "cuda") is False
    import torch
    if not torch.cuda.is_available():
        assert want_warm_kernels("auto", "cuda") is False   # unavailable: the rows say why
    for extra in (["--no-notebooks"], ["--executor", "local"]):
        with pytest.raises(SystemExit, match="--warm-kernels on"):
            runner.main(["--warm-kernels", "on", "--list", *extra])
    with pytest.raises(SystemExit):
        runner.main(["--warm-kernels", "sometimes", "--list"])
    assert "--warm-kernels" in capsys.readouterr().err


def test_the_time_table_splits_notebook_rows_outside_time_and_keeps_other_rows_whole():
    def row(run, outside, kernel=None, cells=None, warm=None):
        phases = {k: 1.0 for k in PHASES}
        return dict(run=run, wall_s=outside + len(PHASES), outside_run_s=outside, device="cpu",
                    phases=phases, kernel_s=kernel, cells_outside_run_s=cells, warm_kernel=warm)
    both = dict(rows=[row("nb", 5.0, kernel=1.5, cells=3.5, warm=True), row("job", 2.0)])
    md = time_split_md(both, {"nb": {}, "job": {}})
    cells = table_cells(md)
    assert cells[PHASE_LABELS["kernel_s"]][0] == "1.5"
    assert cells[PHASE_LABELS["cells_outside_run_s"]][0] == "3.5"
    assert cells[PHASE_LABELS["outside_run_s"]][0] == "2.0"        # the job's, not split
    assert "1 of the 2 rows ran on a kernel started" in md
    only_nb = time_split_md(dict(rows=both["rows"][:1]), {"nb": {}})
    assert PHASE_LABELS["outside_run_s"] not in only_nb             # no unsplit row: no line
    assert "warm-kernels" in only_nb
