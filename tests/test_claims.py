"""Problem 3: the probes against hand-computed values, the nested subsets, the sizes, and
the verdicts on fixture results."""
import dataclasses
import json
import math

import pytest
import torch

from helpers.claims import DEFAULT_SIZES, FRACTIONS, data_rows, problem3_runs
from helpers.config import RANDOM_INIT, ExperimentConfig
from helpers.data import nested_fraction, train_sample
from helpers.probes import (attention_distance_per_image, receptive_fields,
                            uniform_attention_distance, vit_attention_distances)
from helpers.report.claims import VERDICTS, claim1, claim2, claim3, claim4, claim5, verdicts


# ----------------------------------------------------------------------------- probes
def mean_distance(attn, grid, patch_px):
    """Per head, over the images."""
    return attention_distance_per_image(attn, grid, patch_px).mean(0)


def test_attention_on_the_query_itself_has_distance_zero():
    grid = 3
    attn = torch.eye(grid * grid).expand(2, 4, -1, -1)          # (B, heads, N, N)
    assert mean_distance(attn, grid, 4).tolist() == [0.0] * 4


def test_uniform_attention_equals_the_closed_form():
    # A 2x2 grid of 4-px patches: from any patch, the four centres are 0, 4, 4 and 4*sqrt(2)
    # px away, so uniform attention averages (8 + 4 sqrt 2) / 4 = 2 + sqrt 2 px.
    hand = 2 + math.sqrt(2)
    attn = torch.full((1, 2, 4, 4), 0.25)
    assert mean_distance(attn, 2, 4).tolist() == pytest.approx([hand, hand])
    assert uniform_attention_distance(2, 4) == pytest.approx(hand)


def test_attention_to_the_opposite_corner_and_unnormalised_rows():
    attn = torch.zeros(1, 1, 4, 4)
    attn[0, 0, torch.arange(4), torch.tensor([3, 2, 1, 0])] = 5.0  # each to its diagonal
    assert mean_distance(attn, 2, 4).item() == pytest.approx(4 * math.sqrt(2))


def test_attention_map_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="3x3 grid"):
        mean_distance(torch.ones(1, 1, 8, 8), 3, 4)


def test_a_vit_with_zero_queries_attends_uniformly_over_its_patches():
    """q = k = 0 makes every softmax uniform over the T = N + 1 tokens; without the class
    token and renormalised, that is uniform over the patches: the closed form, exactly."""
    from helpers.models import build_model
    model = build_model("vit", 10, img_size=16, patch_size=4, dim=32, depth=3, heads=2)
    for block in model.blocks:
        torch.nn.init.zeros_(block.attn.qkv.weight)
        torch.nn.init.zeros_(block.attn.qkv.bias)
    x = torch.randn(5, 3, 16, 16)
    out = vit_attention_distances(model, [(x, None)])
    closed = uniform_attention_distance(4, 4)
    assert [len(heads) for heads in out["mean"]] == [2, 2, 2]
    assert sum(out["mean"], []) == pytest.approx([closed] * 6)
    assert sum(out["se"], []) == pytest.approx([0.0] * 6, abs=1e-9)


def test_resnet18_receptive_field_equals_the_formula():
    """CIFAR ResNet-18: a 3x3 stride-1 stem, then four stages of two basic blocks (two 3x3
    convs each); stages 2-4 open with a stride-2 conv. A k x k conv adds (k - 1) x the jump
    (the product of the strides before it): r = 1 + 2 = 3 after the stem; stage 1 adds four
    convs at jump 1 -> 11; stage 2: 2 x 1 + three convs at jump 2 -> 25; stage 3 -> 53;
    stage 4 -> 109, more than three times the 32-px image."""
    from helpers.models import build_model
    expected, r, jump = [("stem", 3, 1)], 3, 1
    for stage, stride in (("layer1", 1), ("layer2", 2), ("layer3", 2), ("layer4", 2)):
        r += 2 * jump                       # the first conv sees the incoming jump
        jump *= stride
        r += 3 * 2 * jump                   # the other three convs at the new jump
        expected.append((stage, r, jump))
    got = [(f["stage"], f["receptive_field_px"], f["stride_px"])
           for f in receptive_fields(build_model("resnet18", 10))]
    assert got == expected
    assert expected[-1][1] == 109


# ----------------------------------------------------------------------------- subsets
def test_fractions_are_nested_class_balanced_and_fixed_by_the_seed():
    y = torch.arange(10).repeat_interleave(40)[torch.randperm(400)]     # 10 classes x 40
    subsets = {f: set(nested_fraction(y, f, seed=3).tolist()) for f in FRACTIONS}
    for small, large in zip(FRACTIONS, FRACTIONS[1:]):
        assert subsets[small] < subsets[large]
    for f, idx in subsets.items():
        counts = torch.bincount(y[list(idx)], minlength=10)
        assert counts.tolist() == [round(40 * f)] * 10
    assert nested_fraction(y, 0.25, seed=3).tolist() == sorted(subsets[0.25])
    assert set(nested_fraction(y, 0.25, seed=4).tolist()) != subsets[0.25]


def test_every_class_keeps_an_image_and_bad_fractions_are_refused():
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    assert torch.bincount(y[nested_fraction(y, 0.1, 0)]).tolist() == [1, 1, 1]
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="train_fraction"):
            nested_fraction(y, bad, 0)


def test_the_train_sample_is_fixed():
    assert train_sample(100, 0, 0) is None
    a = train_sample(100, 30, 7)
    assert a.tolist() == train_sample(100, 30, 7).tolist() and len(set(a.tolist())) == 30
    assert len(train_sample(10, 30, 7)) == 10


# ----------------------------------------------------------------------------- sizes
def test_every_share_takes_the_full_data_runs_steps_and_warm_up():
    sizes = dataclasses.replace(DEFAULT_SIZES, data_epochs=6)
    for model_rows in zip(*[iter(data_rows(sizes))] * len(FRACTIONS)):
        full = model_rows[-1]
        steps_full = 50_000 // full["batch_size"] * full["epochs"]
        warm_full = full["warmup_epochs"] * (50_000 // full["batch_size"])
        for row in model_rows:
            per_epoch = round(50_000 * row["train_fraction"]) // row["batch_size"]
            assert abs(per_epoch * row["epochs"] - steps_full) <= per_epoch / 2
            assert row["warmup_epochs"] * per_epoch == pytest.approx(warm_full, abs=0.01)
            assert row["batch_size"] == full["batch_size"]


def test_problem3_rows_resolve_to_valid_configs():
    from helpers.notebooks import problem3_config
    for row in problem3_runs():
        params = {k: v for k, v in row.items() if k not in ("label", "problem")}
        cfg = problem3_config(dataset="cifar100", **params)
        assert cfg.problem == 3 and cfg.run_name == row["run_name"] == cfg.default_run_name()


# ----------------------------------------------------------------------------- verdicts
def result(run_name, label, model, acc, *, study="data_efficiency", seed=0, fraction=None,
           train=None, n_test=10_000, n_train=50_000, **cfg):
    return dict(run_name=run_name if not seed else f"{run_name}-seed{seed}", problem=3,
                status="complete", label=label, model=model, test_acc=acc,
                train_eval_acc=train, epoch_time_s=1.0, history=cfg.pop("history", []),
                probes=cfg.pop("probes", None),
                dataset=dict(n_test=n_test, n_train=n_train),
                config=dict(study=study, seed=seed, train_fraction=fraction,
                            train_eval_images=1000, **cfg))


def data_study(accs: dict, seeds=(0,), n_test=10_000, train=None):
    """accs: {(label, fraction): test accuracy or [one per seed]}."""
    runs = {}
    for (label, f), acc in accs.items():
        model = "resnet18" if label == "ResNet-18" else "vit"
        for i, seed in enumerate(seeds):
            a = acc[i] if isinstance(acc, list) else acc
            t = (train or {}).get((label, f))
            r = result(f"p3-data-{label}-f{round(100 * f)}", label, model, a, seed=seed,
                       fraction=f, train=t[i] if isinstance(t, list) else t, n_test=n_test)
            runs[r["run_name"]] = r
    return runs


def test_claim1_each_verdict():
    closes = data_study({("ResNet-18", 0.1): 40.0, ("ViT (2L)", 0.1): 20.0,
                         ("ResNet-18", 1.0): 60.0, ("ViT (2L)", 1.0): 55.0})
    assert claim1(closes).verdict == "supported"
    widens = data_study({("ResNet-18", 0.1): 40.0, ("ViT (2L)", 0.1): 35.0,
                         ("ResNet-18", 1.0): 70.0, ("ViT (2L)", 1.0): 45.0})
    assert claim1(widens).verdict == "not supported"
    vit_leads = data_study({("ResNet-18", 0.1): 20.0, ("ViT (2L)", 0.1): 40.0,
                            ("ResNet-18", 1.0): 60.0, ("ViT (2L)", 1.0): 55.0})
    assert claim1(vit_leads).verdict == "not supported"
    noisy = data_study({("ResNet-18", 0.1): 40.0, ("ViT (2L)", 0.1): 30.0,
                        ("ResNet-18", 1.0): 60.0, ("ViT (2L)", 1.0): 50.0}, n_test=100)
    assert claim1(noisy).verdict == "within noise"
    assert claim1({}).verdict == "not run"
    # A trend is judged at every step, not on its ends: the gap that widens from 10 % to
    # 25 % and 50 % before it closes at 100 % does not close with more data.
    rises = {("ResNet-18", 0.1): 40.0, ("ViT (2L)", 0.1): 20.0,      # gap 20, 30, 32, 5
             ("ResNet-18", 0.25): 50.0, ("ViT (2L)", 0.25): 20.0,
             ("ResNet-18", 0.5): 55.0, ("ViT (2L)", 0.5): 23.0,
             ("ResNet-18", 1.0): 60.0, ("ViT (2L)", 1.0): 55.0}
    v = claim1(data_study(rises))
    assert v.verdict == "not supported" and "changes by +10.00 (beyond noise" in v.evidence
    steady = {**rises, ("ViT (2L)", 0.25): 37.0, ("ViT (2L)", 0.5): 47.0}     # 20, 13, 8, 5
    assert claim1(data_study(steady)).verdict == "supported"


def test_claim1_with_seeds_uses_the_per_seed_contrasts():
    steady = data_study({("ResNet-18", 0.1): [40.0, 41.0, 39.0], ("ViT (2L)", 0.1): [20, 22, 19],
                         ("ResNet-18", 1.0): [60.0, 61.0, 59.0], ("ViT (2L)", 1.0): [57, 59, 56]},
                        seeds=(0, 1, 2), n_test=100)
    v = claim1(steady)
    assert v.verdict == "supported" and "3 seeds" in v.evidence
    erratic = data_study({("ResNet-18", 0.1): [40.0, 20.0, 45.0], ("ViT (2L)", 0.1): [20, 40, 21],
                          ("ResNet-18", 1.0): [60.0, 59.0, 58.0], ("ViT (2L)", 1.0): [57, 40, 58]},
                         seeds=(0, 1, 2))
    assert claim1(erratic).verdict == "within noise"


def test_claim2_overfitting_is_a_larger_train_test_gap():
    accs = {("ResNet-18", 0.1): 40.0, ("ViT (2L)", 0.1): 30.0,
            ("ResNet-18", 1.0): 60.0, ("ViT (2L)", 1.0): 55.0}
    overfits = {("ResNet-18", 0.1): 50.0, ("ViT (2L)", 0.1): 90.0,
                ("ResNet-18", 1.0): 65.0, ("ViT (2L)", 1.0): 60.0}
    assert claim2(data_study(accs, train=overfits)).verdict == "supported"
    underfits = {**overfits, ("ViT (2L)", 0.1): 31.0}
    assert claim2(data_study(accs, train=underfits)).verdict == "not supported"
    assert claim2(data_study(accs)).verdict == "not run"          # no train sample scored


def probe_runs(heads_block1: list[float], se: float, untrained=(16.0, 16.4)):
    """A ViT whose first block's heads reach `heads_block1` px (uniform attention: 16.5 px;
    untrained, `untrained` or no untrained probe when None) and a ResNet-18 whose first
    stage sees 11 px (radius 5)."""
    probes = dict(attention_distance_px=[heads_block1, [10.0, 10.0]],
                  attention_distance_se_px=[[se] * 2, [se] * 2],
                  uniform_distance_px=16.5, images=256, img_size=32, patch_size=4)
    if untrained is not None:
        probes.update(untrained_distance_px=[list(untrained), [16.0, 16.0]],
                      untrained_distance_se_px=[[se] * 2, [se] * 2])
    vit = result("p1-vit-2L-2H-128", "ViT (2L-2H-128)", "vit", 30.0, study=None, probes=probes)
    vit["problem"] = 1
    resnet = result("p1-resnet18", "ResNet-18", "resnet18", 40.0, study=None,
                    probes=dict(img_size=32, receptive_field=[
                        dict(stage="stem", receptive_field_px=3, stride_px=1),
                        dict(stage="layer1", receptive_field_px=11, stride_px=1)]))
    return {r["run_name"]: r for r in (vit, resnet)}


def test_claim3_compares_the_first_blocks_reach_with_the_cnns_first_stage():
    assert claim3(probe_runs([3.0, 12.0], 0.2)).verdict == "supported"    # radius 5 px
    assert claim3(probe_runs([2.0, 3.0], 0.2)).verdict == "not supported"
    assert claim3(probe_runs([2.0, 5.3], 0.5)).verdict == "within noise"
    assert claim3({}).verdict == "not run"


def test_claim3_cannot_tell_when_attention_is_uniform_or_untrained():
    # As far as uniform attention reaches (16.5 px): far beyond ResNet-18's 5 px radius,
    # and still no evidence that anything was learned.
    uniform = claim3(probe_runs([3.0, 16.5], 0.2))
    assert uniform.verdict == "cannot tell" and "16.50 px" in uniform.evidence
    # Measurably not uniform, but where the same ViT untrained already looked.
    as_untrained = claim3(probe_runs([3.0, 12.0], 0.2, untrained=(3.0, 12.1)))
    assert as_untrained.verdict == "cannot tell"
    # Beyond noise (a tiny standard error) but a fraction of a pixel: not another way of
    # attending.
    nudged = claim3(probe_runs([3.0, 16.8], 0.01, untrained=(3.0, 12.0)))
    assert nudged.verdict == "cannot tell" and "under 1 px" in nudged.evidence
    # A result without the untrained probe (written before it existed).
    assert claim3(probe_runs([3.0, 12.0], 0.2, untrained=None)).verdict == "cannot tell"


def resolution_study(frozen: dict, weights="w.pth", curve=None):
    runs = {}
    for px, acc in frozen.items():
        history = [dict(epoch=i + 1, test_acc=a) for i, a in enumerate(curve or [acc])]
        r = result(f"p3-res-swin_tiny-finetune-{px}px", "Swin-Tiny", "swin_tiny", acc,
                   study="resolution", img_size=px, mode="finetune", weights=weights,
                   history=history)
        runs[r["run_name"]] = r
    return runs


def test_claim4_each_verdict():
    assert claim4(resolution_study({32: 30.0, 224: 60.0})).verdict == "supported"
    assert claim4(resolution_study({32: 60.0, 224: 30.0})).verdict == "not supported"
    assert claim4(resolution_study({32: 50.0, 224: 50.2})).verdict == "within noise"
    random = claim4(resolution_study({32: 30.0, 224: 60.0}, weights=RANDOM_INIT))
    assert random.verdict == "not run" and "random init" in random.evidence


def test_claim5_reads_the_frozen_curve():
    def at(curve):
        return claim5(resolution_study({224: curve[-1]}, curve=curve)).verdict
    assert at([40.0, 50.0, 55.0, 58.0, 62.0]) == "supported"         # still rising
    assert at([40.0, 55.0, 60.0, 61.0, 61.1]) == "not supported"     # levelled off
    assert at([40.0, 55.0, 60.0, 63.0, 58.0]) == "not supported"     # falling
    assert at([50.0, 50.1, 50.0, 50.2, 50.1]) == "within noise"
    assert at([50.0]) == "not run"


def test_every_claim_has_a_verdict_from_the_allowed_words():
    found = verdicts({})
    assert [v.claim for v in found] == [1, 2, 3, 4, 5, 6]
    assert {v.verdict for v in found} == {"not run"}
    assert set(VERDICTS) == {"supported", "not supported", "within noise", "cannot tell",
                             "not run"}


def test_every_verdict_drawn_from_synthetic_data_says_demo():
    runs = probe_runs([3.0, 12.0], 0.2)
    assert all("demo" not in v.shown for v in verdicts(runs))
    for r in runs.values():
        r["dataset"]["synthetic"] = True
    found = verdicts(runs)
    assert found[2].verdict == "supported" and "demo" in found[2].shown
    assert all(("demo" in v.shown) == (v.verdict != "not run") for v in found)


def test_the_analysis_and_claim6_judge_the_vit_sizes_alike(tmp_path):
    """Claim 6 and the analysis's ViT-size paragraph mark every step the same way, on the
    committed CIFAR-100 fixture and with one step made a large loss."""
    from helpers import grid, report
    from helpers.report.claims import claim6
    from report_fixtures import fixture
    import re
    import shutil

    def marks(folder):
        runs = report.load_runs(str(folder))
        text = report.build_report(str(folder), figures_dir=None).markdown()
        size = next(line for line in text.splitlines() if line.startswith("**ViT size:**"))
        ana = re.findall(r"points to (ViT \([^)]*\)), (beyond|within) noise", size)
        c6 = claim6(runs)
        claim = re.findall(r"(ViT \([^)]*\)) vs ViT \([^)]*\): [+-][\d.]+ points \((beyond|within) "
                           r"noise", c6.evidence)
        return ana, claim, c6.verdict, size
    ana, claim, verdict, size = marks(fixture("complete"))
    assert ana == claim and len(ana) == 3
    # A step within noise: the analysis names no trend, and claim 6 cannot be supported.
    assert ("within" in [m for _, m in ana]) == ("no size trend" in size)
    assert verdict != "supported" or all(m == "beyond" for _, m in ana)
    folder = tmp_path / "c"
    shutil.copytree(fixture("complete"), folder)
    big = grid.run_name_of(model="vit", patch_size=4, depth=8, heads=8, dim=512)
    path = folder / f"{big}.json"
    r = json.load(open(path))
    r["test_acc"] = 20.0                       # the largest ViT far below the others
    json.dump(r, open(path, "w"))
    ana, claim, verdict, size = marks(folder)
    assert ana == claim and ana[-1] == ("ViT (8L-8H-512)", "beyond")
    assert verdict == "not supported" and "does not rise with size" in size
    # A ViT row missing: its steps go unjudged, and neither says there is a trend.
    ana, claim, verdict, size = marks(fixture("incomplete"))
    assert ana == claim and verdict == "cannot tell"
    assert "cannot be judged for a size trend without ViT (6L-8H-384)" in size


def test_the_size_steps_are_the_differences_of_the_accuracies_they_stand_beside(tmp_path):
    """A step's number is the tables' rounded accuracies' difference, never one that the
    printed accuracies contradict in the last digit (47.055 shows as 47.05, so a step from
    45.29 reads +1.76, not the unrounded +1.765)."""
    from helpers import grid, report
    from helpers.report.claims import claim6
    from report_fixtures import fixture
    import re
    import shutil
    folder = tmp_path / "c"
    shutil.copytree(fixture("complete"), folder)
    vits = [e["run_name"] for e in grid.problem1_runs() if e["model"] == "vit"]
    for name, acc in zip(vits, (40.125, 45.29, 47.055, 49.995)):
        path = folder / f"{name}.json"
        r = json.load(open(path))
        r["test_acc"] = acc
        json.dump(r, open(path, "w"))
    text = report.build_report(str(folder), figures_dir=None).markdown()
    size = next(line for line in text.splitlines() if line.startswith("**ViT size:**"))
    shown = [float(a) for a in re.findall(r"ViT \([^)]*\) ([\d.]+) %", size)]
    stepped = [float(d) for d in re.findall(r"([+-][\d.]+) points to", size)]
    c6 = [float(d) for d in re.findall(r"ViT \([^)]*\) vs ViT \([^)]*\): ([+-][\d.]+) points",
                                       claim6(report.load_runs(str(folder))).evidence)]
    assert shown == [round(a, 2) for a in (40.125, 45.29, 47.055, 49.995)]
    by_hand = [round(b - a, 2) for a, b in zip(shown, shown[1:])]
    assert stepped == by_hand == c6


def test_claim6_judges_every_swin_mode_and_is_never_supported_with_a_row_missing():
    """Every Swin pair is a step of the trend, whatever its mode (the from-scratch pair,
    where the smaller wins, included); a missing row makes "supported" a "cannot tell",
    and is named, since the steps through it are not judged."""
    from helpers import report
    from helpers.report.claims import claim6
    from report_fixtures import fixture
    complete = claim6(report.load_runs(str(fixture("complete"))))
    for mode in ("fine-tuned (frozen backbone)", "fine-tuned (full)", "from scratch"):
        assert f"Swin-Small vs Swin-Tiny, {mode}: " in complete.evidence
    assert "Not judged" not in complete.evidence
    incomplete = claim6(report.load_runs(str(fixture("incomplete"))))
    assert incomplete.verdict == "cannot tell"
    assert "Not judged, with no complete run: p1-vit-6L-8H-384" in incomplete.evidence


# ----------------------------------------------------------------------------- end to end
def test_problem3_notebook_trains_one_run_with_its_train_sample_and_probes(tmp_path):
    """What a student does: run notebooks/problem3.ipynb with papermill parameters."""
    pytest.importorskip("papermill")
    from helpers.notebook_exec import execute_notebook
    from helpers.paths import NOTEBOOKS
    params = dict(study="data_efficiency", model="vit", dim=32, depth=2, heads=2,
                  train_fraction=0.5, epochs=2, dataset="synthetic-5", train_subset=60,
                  test_subset=20, results_dir=str(tmp_path / "results"), device="cpu")
    execute_notebook(NOTEBOOKS[3], str(tmp_path / "out.ipynb"), params)
    (path,) = (tmp_path / "results").glob("*.json")
    r = json.loads(path.read_text())
    assert path.name == "p3-data-vit-2L-2H-32-f50.json" and r["problem"] == 3
    assert r["dataset"]["n_train"] == 30 and r["train_eval_acc"] is not None
    assert [len(h) for h in r["probes"]["attention_distance_px"]] == [2, 2]
    assert [len(h) for h in r["probes"]["untrained_distance_px"]] == [2, 2]


def test_the_untrained_probe_is_the_seeds_initialisation_and_leaves_the_rng_alone():
    from helpers.data import load_dataset
    from helpers.experiment import probes
    from helpers.models import build_model
    cfg = ExperimentConfig(model="vit", dim=32, depth=2, heads=2, dataset="synthetic-5",
                           train_subset=40, test_subset=8, seed=3, device="cpu").resolved()
    data = load_dataset(cfg.dataset, train_subset=40, test_subset=8, seed=3)
    trained = build_model("vit", data.num_classes, **cfg.model_kwargs())
    with torch.no_grad():
        for p in trained.parameters():
            p.mul_(3.0)                                  # anything but the initialisation
    torch.manual_seed(123)
    probed = probes(trained, cfg, data, torch.device("cpu"), 8)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(1))            # the RNG stream is untouched
    torch.manual_seed(3)
    fresh = build_model("vit", data.num_classes, **cfg.model_kwargs())
    again = probes(fresh, cfg, data, torch.device("cpu"), 8)
    assert probed["untrained_distance_px"] == again["attention_distance_px"]
    assert probed["attention_distance_px"] != probed["untrained_distance_px"]


def test_the_runner_builds_problem3s_section_offline(tmp_path):
    """`python -m helpers.run --problems 3 --demo`, on six of its rows: results, figures,
    and a verdict for every claim, labelled as a demo where one is drawn."""
    from helpers.runner.cli import main
    rows = ["p3-data-resnet18-f10", "p3-data-resnet18-f100",
            "p3-data-vit-2L-2H-128-f10", "p3-data-vit-2L-2H-128-f100",
            "p3-res-swin_tiny-finetune-32px", "p3-res-swin_tiny-finetune_full-32px"]
    out = tmp_path / "demo"
    assert main(["--problems", "3", "--demo", "--device", "cpu", "--results-dir", str(out),
                 "--only", *rows]) == 0
    for row in rows:
        r = json.loads((out / f"{row}.json").read_text())
        assert r["status"] == "complete" and r["problem"] == 3
    report = (out / "report.md").read_text()
    section = report.split("## Problem 3", 1)[1]
    for k in range(1, 7):
        line = next(x for x in section.splitlines() if x.startswith(f"| {k}. "))
        verdict = next(v for v in VERDICTS if f"| {v}" in line)
        assert ("(demo data, not a finding)" in line) == (verdict != "not run"), line
    drawn = [x for x in section.splitlines() if x.startswith("| 1. ")]   # claim 1: both models
    assert "not run" not in drawn[0] and "(demo data, not a finding)" in drawn[0]
    not_run = [x for x in section.splitlines() if "**Verdict: not run.**" in x]
    assert any("random init" in x for x in not_run)       # the fine-tunes' reason is named
    for name in ("claims_data", "claims_attention", "claims_resolution", "claims_epochs"):
        assert (out / "figures" / f"{name}.png").is_file()
        assert f"figures/{name}.png" in section


def test_the_runner_sizes_problem3_by_the_default_or_the_demo_preset():
    from helpers.runner.cli import parse_settings
    from helpers.runner.demo import CLAIMS_CPU
    assert parse_settings([]).claims == DEFAULT_SIZES
    assert parse_settings(["--demo", "--device", "cpu"]).claims == CLAIMS_CPU != DEFAULT_SIZES
