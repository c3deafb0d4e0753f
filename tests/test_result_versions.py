"""Result files with a schema version and a training recipe (helpers/results.py): old files
are migrated, newer ones refused; the recipe id follows the training code's semantics; the
report's fixtures are what tests/fixtures/make_fixtures.py writes."""
import importlib.util
import json
import os
import re
import shutil

import pytest

from helpers import results
from helpers.changes import recipe_changes
from helpers.results import failed_result, record_problems
from helpers.report.build import header_md
from helpers.report.tables import load_runs
from helpers.results import (MIGRATIONS, RECIPE_BEFORE_VERSIONS, RECIPE_SOURCES, SCHEMA_VERSION,
                             ResultVersionError, migrate, read_result, read_results,
                             recipe_digest, recipe_id)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
# A result file exactly as the code before schema versions wrote it (a copy of the
# committed fixture results_complete/p1-resnet18.json of that code).
OLD_FILE = os.path.join(FIXTURES, "schema_v0_result.json")


def raw(path):
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- versions
def test_a_file_from_before_versions_loads_migrated_with_the_recipe_of_its_code():
    old = raw(OLD_FILE)
    assert "schema_version" not in old and "recipe" not in old     # the fixture stays old
    r = read_result(OLD_FILE)
    assert r["schema_version"] == SCHEMA_VERSION
    assert r["recipe"] == RECIPE_BEFORE_VERSIONS
    assert {k: v for k, v in r.items() if k not in ("schema_version", "recipe")} == old
    assert record_problems(old) == [] and record_problems(r) == []


def test_the_report_reads_a_folder_of_old_files_and_names_their_recipe(tmp_path):
    shutil.copy(OLD_FILE, tmp_path / "p1-resnet18.json")
    runs = load_runs(str(tmp_path))
    assert list(runs) == ["p1-resnet18"]
    assert f"**Recipe(s):** {RECIPE_BEFORE_VERSIONS}" in header_md(runs)


def test_a_file_from_a_newer_schema_is_refused_naming_the_file_and_version(tmp_path):
    future = dict(raw(OLD_FILE), schema_version=SCHEMA_VERSION + 1)
    path = tmp_path / "p1-resnet18.json"
    path.write_text(json.dumps(future))
    for read in (lambda: read_result(str(path)), lambda: read_results(str(tmp_path))):
        with pytest.raises(ResultVersionError) as err:
            read()
        assert str(path) in str(err.value)
        assert f"schema_version {SCHEMA_VERSION + 1}" in str(err.value)
    assert any(f"schema_version {SCHEMA_VERSION + 1}" in p for p in record_problems(future))
    with pytest.raises(ValueError, match=str(path)):           # the report's loader
        load_runs(str(tmp_path))


@pytest.mark.parametrize("bad", [-1, "1", 1.0, True])
def test_a_malformed_schema_version_is_named(bad):
    with pytest.raises(ValueError, match="schema_version"):
        migrate(dict(raw(OLD_FILE), schema_version=bad), "x.json")


def test_migration_is_one_step_per_version_in_order(monkeypatch):
    """The next version adds one step to MIGRATIONS; an old file goes through every step."""
    assert len(MIGRATIONS) == SCHEMA_VERSION
    seen = []

    def next_step(r):
        seen.append(r["recipe"])                 # runs after the steps before it
        return dict(r, new_key=r.get("new_key", "filled in"))
    monkeypatch.setattr(results, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(results, "MIGRATIONS", MIGRATIONS + (next_step,))
    old = raw(OLD_FILE)
    new = results.migrate(old)
    assert new["schema_version"] == SCHEMA_VERSION + 1 and new["new_key"] == "filled in"
    assert seen == [RECIPE_BEFORE_VERSIONS]
    assert "schema_version" not in old                         # the input is not changed
    current = dict(old, schema_version=SCHEMA_VERSION, recipe="abc")
    assert results.migrate(current)["recipe"] == "abc"         # only the missing steps run


def test_a_version_1_file_with_removed_speed_fields_loads_migrated_and_still_counts(tmp_path):
    """Version 2 dropped compile_scope, fused_attention and cache_features and made compile
    a bool. A version-1 result of the same run that has them (compile=None: the engine chose
    eager) loads without them and is complete for the runner; a checkpoint whose config
    still has them resumes."""
    from helpers.changes import decide
    from helpers.config import ExperimentConfig
    cfg = ExperimentConfig(model="resnet18", dataset="synthetic", epochs=2).resolved().to_dict()
    old_cfg = dict(cfg, compile=None, compile_scope="blocks", fused_attention=True,
                   cache_features=False)
    v1 = dict(raw(os.path.join(FIXTURES, "results_complete", "p1-resnet18.json")),
              schema_version=1, recipe=recipe_id(), config=old_cfg)
    path = tmp_path / "p1-resnet18.json"
    path.write_text(json.dumps(v1))
    r = read_result(str(path))
    assert r["schema_version"] == SCHEMA_VERSION and record_problems(r) == []
    assert r["config"] == {**{k: v for k, v in cfg.items()
                              if k not in results.REMOVED_CONFIG_FIELDS}, "compile": False}
    assert decide(cfg, r).action == "skip"
    assert decide(cfg, None, checkpoint=dict(config=old_cfg, recipe=recipe_id())).action \
        == "resume"


def test_new_results_record_the_version_and_this_codes_recipe():
    r = failed_result(run_name="t", problem=1, model="vit", label=None,
                      config=dict(dataset="synthetic", seed=0), status="failed",
                      reason="x", started="2025-01-01T00:00:00+00:00")
    assert r["schema_version"] == SCHEMA_VERSION and r["recipe"] == recipe_id()
    assert record_problems(r) == []
    assert migrate(r) == r


# ----------------------------------------------------------------------------- the recipe
def sources():
    out = {}
    for file in RECIPE_SOURCES:
        with open(os.path.join(results.PACKAGE_DIR, file), encoding="utf-8") as f:
            out[file] = f.read()
    return out


def edited(file, old, new, count=1):
    src = sources()
    assert src[file].count(old) >= 1, f"helpers/{file} no longer has {old!r}: update the test"
    src[file] = src[file].replace(old, new, count)
    return src


def test_the_recipe_id_is_the_digest_of_the_listed_definitions():
    assert re.fullmatch(r"[0-9a-f]{12}", recipe_id())
    assert recipe_id() == recipe_digest(sources())


@pytest.mark.parametrize("file, old, new", [
    # a comment, a docstring, the layout of a call
    ("train.py", "    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]\n",
     "    # only what trains\n    named = [(n, p) for n, p in model.named_parameters()\n"
     "             if p.requires_grad]   # frozen layers excluded\n"),
    ("train.py", '"""Linear warm-up to the peak learning rate, then cosine decay to zero, '
     'per step."""', '"""Warm-up, then cosine."""'),
    ("rules.py", "MIN_STEPS_PER_EPOCH = 20", "MIN_STEPS_PER_EPOCH = (20)   # at least"),
    # a definition the recipe does not list
    ("train.py", 'return device_type == "cuda"', 'return device_type in ("cuda",)'),
])
def test_comments_docstrings_layout_and_unlisted_code_keep_the_recipe(file, old, new):
    assert recipe_digest(edited(file, old, new)) == recipe_id()


@pytest.mark.parametrize("file, old, new", [
    ("train.py", "label_smoothing=cfg.label_smoothing", "label_smoothing=0.0"),      # loss
    ("train.py", "momentum=0.9, nesterov=True", "momentum=0.9, nesterov=False"),     # optimiser
    ("models/vit.py", 'return {"cls_token", "pos_embed"}', 'return {"cls_token"}'),  # decay
    ("train.py", "0.5 * (1.0 + math.cos(", "0.4 * (1.0 + math.cos("),                # schedule
    ("config.py", "lr=0.2,", "lr=0.1,"),                                            # a default
    ("rules.py", "MIN_STEPS_PER_EPOCH = 20", "MIN_STEPS_PER_EPOCH = 10"),           # batch rule
    ("rules.py", "AUTO_WARMUP_MAX_SHARE = 0.2", "AUTO_WARMUP_MAX_SHARE = 0.25"),    # warm-up
    ("data/loader.py", "PAD = 4", "PAD = 2"),                                       # augmentation
    ("data/loader.py", "flips = torch.randint(0, 2,", "flips = torch.randint(0, 1,"),
])
def test_a_change_to_training_semantics_changes_the_recipe(file, old, new):
    assert recipe_digest(edited(file, old, new)) != recipe_id()


def test_a_listed_definition_that_moved_is_named():
    src = edited("rules.py", "def warmup_steps(", "def warm_up_steps(")
    with pytest.raises(LookupError, match=r"helpers/rules.py defines no 'warmup_steps'"):
        recipe_digest(src)


def test_recipe_changes_compares_with_this_codes_recipe(monkeypatch):
    assert recipe_changes(recipe_id()) == []
    assert recipe_changes("0123456789ab") == [f"recipe: 0123456789ab -> {recipe_id()}"]
    # None: a checkpoint from before recipes, i.e. the recipe of that code
    import helpers.changes
    monkeypatch.setattr(helpers.changes, "recipe_id", lambda: RECIPE_BEFORE_VERSIONS)
    assert recipe_changes(None) == []
    monkeypatch.setattr(helpers.changes, "recipe_id", lambda: "fedcba987654")
    assert recipe_changes(None) == [f"recipe: {RECIPE_BEFORE_VERSIONS} -> fedcba987654"]


def test_the_report_header_groups_rows_by_recipe(tmp_path):
    for name in ("p1-resnet18", "p1-vit-2L-2H-128", "p1-vit-4L-4H-256"):
        shutil.copy(os.path.join(FIXTURES, "results_complete", f"{name}.json"), tmp_path)
    r = raw(tmp_path / "p1-vit-2L-2H-128.json")
    (tmp_path / "p1-vit-2L-2H-128.json").write_text(json.dumps(dict(r, recipe="0123456789ab")))
    line = next(x for x in header_md(load_runs(str(tmp_path))).splitlines() if "Recipe" in x)
    assert f"{RECIPE_BEFORE_VERSIONS} (`p1-resnet18`, `p1-vit-4L-4H-256`)" in line
    assert "0123456789ab (`p1-vit-2L-2H-128`)" in line


# ----------------------------------------------------------------------------- fixtures
def load_maker():
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", os.path.join(FIXTURES, "make_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_fixtures_are_what_the_script_writes(tmp_path):
    maker = load_maker()
    maker.write_fixtures(str(tmp_path))
    folders = sorted(os.listdir(tmp_path))
    assert folders == [f"results_{n}" for n in sorted(maker.FOLDERS)]
    for folder in folders:
        made = sorted(os.listdir(tmp_path / folder))
        committed = sorted(f for f in os.listdir(os.path.join(FIXTURES, folder))
                           if f.endswith(".json"))
        assert committed == made, folder
        for f in made:
            with open(os.path.join(FIXTURES, folder, f)) as c:
                assert c.read() == (tmp_path / folder / f).read_text(), (
                    f"tests/fixtures/{folder}/{f} differs from what make_fixtures.py writes: "
                    "edit the spec and run the script, not the file")


def test_every_fixture_is_a_valid_record_of_this_schema():
    for folder in load_maker().FOLDERS:
        d = os.path.join(FIXTURES, f"results_{folder}")
        for f in (f for f in os.listdir(d) if f.endswith(".json")):
            r = raw(os.path.join(d, f))
            assert r["schema_version"] == SCHEMA_VERSION and record_problems(r) == [], f
