"""helpers.bench.check, the one-sitting GPU check, on a CPU at tiny sizes: it writes the
benchmark file, the grid time record and its summary with only torch, torchvision and
timm importable, and its projection is the stated rule applied to the results."""
import json
import os
import subprocess
import sys

import pytest

from helpers.config import CIFAR100_SIZES
from helpers.grid import EPOCHS
from helpers.paths import REPO_ROOT


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    script = f"""
import sys
for name in ("papermill", "nbclient", "nbformat", "jupyter_client", "ipykernel", "thop",
             "pandas", "matplotlib", "submitit"):
    sys.modules[name] = None                      # `import name` now raises ImportError
from helpers.bench import check
check.main(["--quick", "--device", "cpu", "--budget-s", "600", "--models",
            "resnet18,vit-2L-2H-128", "--out", {str(tmp / "bench.json")!r},
            "--results-dir", {str(tmp / "res")!r}])
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=str(tmp), capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    return tmp


def test_the_check_writes_every_part_without_the_jupyter_stack(check):
    bench = json.loads((check / "bench.json").read_text())
    assert {r["run_name"] for r in bench["runs"]} == {"p1-resnet18", "p1-vit-2L-2H-128"}
    for r in bench["runs"]:                     # part 1 eager + part 3 compiled, merged
        assert r["status"] == "complete", r.get("reason")
        assert {"eager", "compiled"} <= set(r["ours"])
    summary = json.loads((check / "res" / "gpu_check.json").read_text())
    assert [summary["parts"][p]["status"] for p in ("bench", "grid", "compile_p1")] == ["done"] * 3
    assert summary["parts"]["compile_swin"]["status"] == "skipped"
    record = json.loads((check / "res" / "logs" / "grid_time.json").read_text())
    assert [row["status"] for row in record["rows"]] == ["complete", "complete"]
    assert all(row["phases"] and row["outside_run_s"] >= 0 for row in record["rows"])


def test_the_projection_is_the_stated_rule_applied_to_the_results(check):
    summary = json.loads((check / "res" / "gpu_check.json").read_text())
    record = json.loads((check / "res" / "logs" / "grid_time.json").read_text())
    proj = summary["projection"]
    assert proj["rows_projected"] == proj["rows_in_grid"] == 2
    for row in record["rows"]:
        r = json.loads((check / "res" / f"{row['run']}.json").read_text())
        p, n_tr, n_te = proj["rows"][row["run"]], r["dataset"]["n_train"], r["dataset"]["n_test"]
        epochs = EPOCHS[1]
        assert p["train_s"] == pytest.approx(r["epoch_time_s"] * epochs * CIFAR100_SIZES[0] / n_tr)
        per_eval = sum(h["eval_time_s"] for h in r["history"]) / len(r["history"])
        assert p["eval_s"] == pytest.approx(per_eval * epochs * CIFAR100_SIZES[1] / n_te)
        assert p["once_s"] == pytest.approx(row["wall_s"] - r["phases"]["train_s"]
                                            - r["phases"]["eval_s"])
    assert proj["total_s"] == pytest.approx(sum(p["total_s"] for p in proj["rows"].values()))


def test_a_bad_budget_or_model_is_refused_before_anything_runs(tmp_path):
    from helpers.bench import check
    with pytest.raises(SystemExit):
        check.main(["--budget-s", "-5", "--results-dir", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="matches no run"):
        check.main(["--models", "vgg", "--results-dir", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()
