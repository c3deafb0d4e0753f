"""benchmarks: the CPU quick mode end to end, honest timing windows, the table.

Timings are noisy on shared cores, so nothing here asserts a speed; the checks are on
the bookkeeping that turns clocks into the reported figures, recomputed by hand.
"""
import dataclasses
import json
import math
import os
import platform
import time

import pytest
import torch

import benchmarks as bench
from benchmarks import cli
from benchmarks.render import END, START, compile_saving, compile_table, fmt
from benchmarks.settings import BenchSettings, peak_tflops, select_runs
from benchmarks.timing import time_train
from helpers.config import ExperimentConfig
from helpers.data import make_synthetic
from helpers.device import resolve_precision
from helpers.grid import grid
from helpers.models import build_model
from helpers.batches import make_batches

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)


def positive_finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def cells(line: str) -> list[str]:
    """The cells of one markdown table row, without their padding."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_rows(block: str) -> list[list[str]]:
    return [cells(line) for line in block.splitlines() if line.startswith("|")]


QUICK = BenchSettings(quick=True, models="resnet18,vit-2L-2H-128", device="cpu", batch_size=4,
                      eval_batch_size=8, steps=2, warmup_steps=1)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick CPU run of two models, written next to a README with hand-written text."""
    folder = tmp_path_factory.mktemp("bench")
    readme = folder / "README.md"
    readme.write_text(f"# Speed\n\nintro kept\n\n{START}\nstale table\n{END}\n\noutro kept\n")
    out = folder / "results" / "cpu.json"
    result = bench.run_benchmark(dataclasses.replace(QUICK, out=str(out), readmes=(str(readme),)))
    return result, json.loads(out.read_text()), readme.read_text()


def test_json_schema_and_provenance(quick):
    result, on_disk, _ = quick
    assert on_disk == json.loads(json.dumps(result))          # what was returned was written
    for key in ("schema_version", "device", "device_type", "device_slug", "precision", "runs",
                "data_path", "peak", "notes", "provenance", "sizes"):
        assert key in on_disk, key
    assert on_disk["device_type"] == "cpu" and on_disk["precision"] == "fp32"
    assert on_disk["device_slug"] == "cpu-" + platform.machine().lower()
    assert on_disk["peak"]["tflops"] is None                   # no CPU peak -> MFU null
    assert any("CPU only" in n for n in on_disk["notes"])
    for key in ("git_commit", "torch", "device", "started", "finished", "hostname"):
        assert key in on_disk["provenance"], key
    assert [r["run_name"] for r in on_disk["runs"]] == ["p1-resnet18", "p1-vit-2L-2H-128"]


def test_reported_figures_follow_from_the_clocks(quick):
    _, r, _ = quick
    for run in r["runs"]:
        assert run["status"] == "complete", run.get("reason")
        o, ref = run["ours"]["eager"], run["reference"]
        B = run["batch_size"]
        assert B == 4 and set(run["ours"]) == {"eager"}                 # no compile on a CPU
        assert o["peak_memory_mib"] is None                             # CUDA only
        # Warm-up excluded: the timed window holds exactly steps x repeats optimizer steps.
        assert o["warmup_steps"] == 1
        assert o["timed_steps"] == o["steps"] * o["repeats"] == 2
        assert o["timed_images"] == o["timed_steps"] * B
        assert o["images_per_s"] == pytest.approx(o["timed_images"] / sum(o["train_s"]))
        assert o["epoch_50k_s"] == pytest.approx(50_000 / o["images_per_s"], rel=1e-12)
        assert o["step_ms"] == pytest.approx(1000 * B / o["images_per_s"])
        assert o["achieved_tflops"] == pytest.approx(
            run["train_flops_per_image"] * o["images_per_s"] / 1e12)
        assert o["mfu"] is None
        for v in (o["images_per_s"], o["eval_images_per_s"], o["warmup_s"],
                  ref["images_per_s"], run["speedup"]):
            assert positive_finite(v), run
        assert ref["timed_images"] == ref["steps"] * B and ref["loss_finite"]
        assert run["speedup"] == pytest.approx(o["images_per_s"] / ref["images_per_s"])
    # ResNet-18's training step is about 3 forward passes: 3 x 2 x (conv + fc MACs).
    resnet = r["runs"][0]
    assert 2.5e9 < resnet["train_flops_per_image"] < 3.6e9


def test_data_path_comparison_is_reported_at_32_and_224_px(quick):
    _, r, _ = quick
    assert [d["img_size"] for d in r["data_path"]] == [32, 224]
    for d in r["data_path"]:
        assert d["ours"]["images"] == d["reference"]["images"] > 0
        assert positive_finite(d["speedup"])
        assert d["speedup"] == pytest.approx(
            d["ours"]["images_per_s"] / d["reference"]["images_per_s"])
    # Each side is timed with the normalisation and loader of the model that uses it,
    # and at 224 px with Swin's training batch (what decides the CPU allocation cost).
    assert [d["model"] for d in r["data_path"]] == ["resnet18", "swin_tiny"]
    swin = ExperimentConfig(model="swin_tiny")
    assert r["data_path"][1]["batch_size"] == swin.default_batch_size()


def test_readme_table_has_a_row_per_model_and_keeps_the_prose(quick):
    _, r, text = quick
    assert text.startswith("# Speed\n\nintro kept\n") and text.rstrip().endswith("outro kept")
    block = text[text.index(START):text.index(END)]
    assert "stale table" not in block
    rows = table_rows(block)
    for run in r["runs"]:
        mine = [row for row in rows if row[0] == run["label"]]
        assert len(mine) == 1 and mine[0][1] == f"`{run['run_name']}`"
        assert fmt(run["ours"]["eager"]["images_per_s"]) in mine[0]
    assert ["NVIDIA H200", "bf16", "—", "not measured yet"] in rows
    assert "CPU only" in block and "Precision **fp32**" in block
    # Every table is well formed: each row has its header's number of cells.
    for table in block.split("\n\n"):
        lines = [cells(x) for x in table.splitlines() if x.startswith("|")]
        assert all(len(x) == len(lines[0]) for x in lines), table


def test_merge_remeasures_only_the_named_runs(quick, tmp_path):
    _, first, _ = quick
    out = tmp_path / "cpu.json"
    out.write_text(json.dumps(first))
    again = dataclasses.replace(QUICK, models="vit-2L-2H-128", reference=False,
                                data_path=False, merge=True, out=str(out), readmes=())
    merged = bench.run_benchmark(again)
    assert [r["run_name"] for r in merged["runs"]] == ["p1-resnet18", "p1-vit-2L-2H-128"]
    assert merged["runs"][0] == first["runs"][0]                   # kept as it was
    assert merged["runs"][1]["measured"] >= first["runs"][1]["measured"]
    # Re-measured without the typical loop: the earlier reference is kept, and the
    # speed-up is recomputed from it and the new figures.
    row, ref = merged["runs"][1], first["runs"][1]["reference"]
    assert row["reference"] == ref
    assert row["speedup"] == pytest.approx(
        row["ours"]["eager"]["images_per_s"] / ref["images_per_s"])
    assert merged["data_path"] == first["data_path"]
    assert merged["kept_from_previous"] == ["data_path", "p1-resnet18"]
    with pytest.raises(SystemExit, match="precision"):
        bench.run_benchmark(dataclasses.replace(again, precision="bf16", steps=1))


def test_the_cli_turns_every_flag_into_a_setting():
    settings, _ = cli.parse_args(["--quick", "--models", "resnet18", "--steps", "3",
                                  "--warmup-steps", "0", "--no-reference", "--compile", "on",
                                  "--note", "a", "--note", "b", "--readme"])
    assert settings == BenchSettings(quick=True, models="resnet18", steps=3, warmup_steps=0,
                                     compile="on", reference=False, notes=("a", "b"),
                                     readmes=())
    default, action = cli.parse_args([])
    assert default == BenchSettings() and action == "measure"
    assert cli.parse_args(["--render-only"])[1] == "render"


@pytest.mark.parametrize("field, value, flag", [
    ("steps", 0, "--steps"), ("warmup_steps", -1, "--warmup-steps"),
    ("eval_batch_size", 0, "--eval-batch-size"), ("compile", "sometimes", "--compile")])
def test_a_bad_setting_is_refused_with_its_flag(field, value, flag, capsys):
    with pytest.raises(ValueError, match=f"^{flag}="):
        BenchSettings(**{field: value})
    if isinstance(value, int):                     # the CLI reports it as a usage error
        with pytest.raises(SystemExit):
            cli.parse_args([flag, str(value)])
        assert f"{flag}={value}" in capsys.readouterr().err


def test_render_only_refreshes_a_readme_and_exits_zero(quick, tmp_path):
    _, r, _ = quick
    (tmp_path / "cpu.json").write_text(json.dumps(r))
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="no <!-- bench:start -->"):     # left untouched
        cli.main(["--render-only", "--out", str(tmp_path / "cpu.json"), "--readme", str(readme)])
    assert readme.read_text() == "no markers here\n"
    readme.write_text(f"# Speed\n\n{START}\n{END}\n")
    assert cli.main(["--render-only", "--out", str(tmp_path / "cpu.json"),
                     "--readme", str(readme)]) == 0
    rows = table_rows(readme.read_text())
    assert [row[1] for row in rows if row[0] == "ResNet-18"] == ["`p1-resnet18`"]


def test_warmup_steps_fall_outside_every_timed_window():
    """Stamp every forward call: the warm-up calls must precede the first window, each
    window must contain exactly its steps, and evaluation must follow the last."""
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8, batch_size=4,
                           eval_batch_size=8, device="cpu").resolved()
    data = make_synthetic(12, 8, num_classes=10, seed=0)
    model = build_model("vit", 10, **cfg.model_kwargs())
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append((time.perf_counter(), m.training)))
    train_b, test_b = make_batches(data, cfg, CPU)
    res, windows = time_train(model, cfg, train_b, test_b, device=CPU, precision=FP32,
                              compile=False, warmup_steps=2, repeats=2, peak=None,
                              flops_per_image=None)
    assert len(windows) == 2 and res["warmup_steps"] == 2 and res["timed_steps"] == 6
    train_calls = [t for t, training in calls if training]
    assert len(train_calls) == 2 + 2 * 3
    assert all(t < windows[0][0] for t in train_calls[:2])
    for start, end in windows:
        assert sum(start <= t <= end for t in train_calls) == 3
    assert all(t > windows[-1][1] for t, training in calls if not training)
    assert res["achieved_tflops"] is None and res["mfu"] is None


def test_peak_table_matches_names_precisely():
    assert peak_tflops("cpu (x86_64, 2 threads)", "fp32") is None
    assert peak_tflops("NVIDIA L40S", "bf16") is None             # not the L4
    assert peak_tflops("Tesla T4", "bf16") is None                # T4 has no bf16
    assert peak_tflops("Tesla T4", "fp16") > peak_tflops("Tesla T4", "fp32")
    sxm = peak_tflops("NVIDIA H200", "bf16")
    nvl = peak_tflops("NVIDIA H200 NVL", "bf16")
    assert sxm > nvl > 0                                                # NVL runs at lower power
    assert peak_tflops("NVIDIA H100 PCIe", "bf16") < peak_tflops(
        "NVIDIA H100 80GB HBM3", "bf16")


def test_model_selection_by_name_and_glob():
    assert [r["run_name"] for r in select_runs("resnet18")] == ["p1-resnet18"]
    swin_t = [r["run_name"] for r in select_runs("p2-swin_tiny-*")]
    assert swin_t == [r["run_name"] for r in grid() if r["run_name"].startswith("p2-swin_tiny")]
    assert len(select_runs(None)) == len(grid())
    with pytest.raises(SystemExit, match="valid run names: p1-resnet18"):
        select_runs("resnet50")


def test_cold_compile_cache_points_the_caches_at_a_fresh_folder_and_restores_them(monkeypatch):
    from benchmarks.timing import cold_compile_cache
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/kept/inductor")
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    with cold_compile_cache():
        inductor = os.environ["TORCHINDUCTOR_CACHE_DIR"]
        assert inductor != "/kept/inductor" and os.path.isdir(inductor)
        assert os.listdir(inductor) == []
        assert os.environ["TRITON_CACHE_DIR"] == os.path.join(inductor, "triton")
    assert not os.path.exists(inductor)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/kept/inductor"
    assert "TRITON_CACHE_DIR" not in os.environ


def test_a_variant_that_fails_leaves_the_rows_other_variants_and_the_file(tmp_path):
    """A compiled variant whose compiler raises (as a cold compile that runs out of memory
    or time would): the row keeps its eager variant and is complete, the failure is recorded
    under its variant's name, and the file on disk held the eager figures before the
    compiled variant began."""
    out = tmp_path / "cpu.json"
    on_disk_at_compile = []

    def broken_backend(graph, example_inputs):
        on_disk_at_compile.append(json.loads(out.read_text()))
        raise RuntimeError("this compiler is broken")
    settings = dataclasses.replace(QUICK, models="vit-2L-2H-128", compile="both",
                                   compile_backend=broken_backend, reference=False,
                                   data_path=False, out=str(out),
                                   readmes=())
    bench.run_benchmark(settings)
    (before,) = on_disk_at_compile[0]["runs"]
    assert set(before["ours"]) == {"eager"} and before["status"] == "complete"
    (row,) = json.loads(out.read_text())["runs"]
    assert row["status"] == "complete"
    assert positive_finite(row["ours"]["eager"]["images_per_s"])
    compiled = row["ours"]["compiled"]
    assert compiled["status"] == "failed" and "this compiler is broken" in compiled["reason"]


def test_a_measurement_past_the_deadline_is_cut_and_the_next_is_not_started():
    from benchmarks.timing import attempt
    t0 = time.monotonic()
    cut = attempt(lambda: time.sleep(30), deadline=t0 + 0.3)
    assert cut["status"] == "failed" and cut["reason"].startswith("TimeoutError")
    assert time.monotonic() - t0 < 5
    late = attempt(lambda: pytest.fail("started after the deadline"), deadline=t0)
    assert late == dict(status="failed", reason="not measured: the time budget was spent")


def test_compile_saving_counts_training_and_evaluation_compile_once():
    # eager 100 img/s train, 400 eval; compiled 200 and 800. 10 epochs of 1,000 images:
    # 10 x (10 - 5) = 50 s saved in training, 10 x (0.25 - 0.125) = 1.25 s in 100-image evaluations.
    eager = dict(images_per_s=100.0, eval_images_per_s=400.0, warmup_s=1.0, eval_warmup_s=0.5)
    compiled = dict(images_per_s=200.0, eval_images_per_s=800.0, warmup_s=31.0,
                    eval_warmup_s=20.5)
    v = compile_saving(eager, compiled, epochs=10, train_images=1000, test_images=100)
    assert v["saved_s"] == pytest.approx(51.25) and v["cost_s"] == pytest.approx(30.0 + 20.0)
    assert v["pays"] and v["net_s"] == pytest.approx(1.25)
    slower_eval = dict(compiled, eval_warmup_s=22.5)               # 2 s more: no longer pays
    assert not compile_saving(eager, slower_eval, epochs=10, train_images=1000,
                              test_images=100)["pays"]


def test_the_compile_table_charges_the_compile_against_the_grids_epochs():
    """Compiled: 2x eager's training and evaluation img/s, 10 s more training warm-up and
    4 s more evaluation warm-up; Problem 1 trains 20 epochs of 50,000 images and evaluates
    10,000 after each. Variants of older files under other names are left out."""
    from helpers.grid import EPOCHS
    eager = dict(images_per_s=1000.0, eval_images_per_s=5000.0, warmup_s=1.0, eval_warmup_s=1.0)
    compiled = dict(eager, images_per_s=2000.0, eval_images_per_s=10_000.0, warmup_s=11.0,
                    eval_warmup_s=5.0, mfu=None)
    row = dict(run_name="p1-resnet18", model="resnet18", status="complete",
               ours={"eager": eager, "compiled": compiled})
    (line,) = [cells(x) for x in compile_table(dict(runs=[row])) if x.startswith("| `")]
    per_epoch = (50_000 / 1000 - 50_000 / 2000) + (10_000 / 5000 - 10_000 / 10_000)   # 26 s
    assert EPOCHS[1] == 20
    assert line == ["`p1-resnet18`", "1,000", "2,000", "—", "2×", fmt(14.0),
                    fmt(14.0 / per_epoch), f"saves {fmt(20 * per_epoch - 14.0)} s over 20"]
    assert compile_table(dict(runs=[dict(row, ours={"eager": eager})])) == []
