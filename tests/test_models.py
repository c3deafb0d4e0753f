"""helpers.models: the registry, parameter counts by hand, and the pretrained-weights paths."""
import os
import socket

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer
from torchvision.models import resnet18 as stock_resnet18

from helpers.data import CIFAR100_MEAN, CIFAR100_STD
from helpers.grid import VIT_SHAPES as PRESET_SHAPES
from helpers.measure import count_params
from helpers.models import (MODELS, SWIN_TAGS, WeightsUnavailableError, build_model, input_spec,
                            prefers_channels_last, pretrained)

C = 100
TINY_TAG = "swin_tiny_patch4_window7_224"


# ----------------------------------------------------------------------------- ResNet-18
def resnet18_params_by_hand(num_classes):
    conv = lambda c_in, c_out, k: c_in * c_out * k * k      # no conv biases (BN follows)
    bn = lambda c: 2 * c                                     # weight + bias
    total = conv(3, 64, 3) + bn(64)                          # CIFAR stem
    c_in = 64
    for c_out in (64, 128, 256, 512):
        total += conv(c_in, c_out, 3) + bn(c_out) + conv(c_out, c_out, 3) + bn(c_out)
        if c_in != c_out:
            total += conv(c_in, c_out, 1) + bn(c_out)        # downsampling shortcut
        total += 2 * (conv(c_out, c_out, 3) + bn(c_out))     # second block
        c_in = c_out
    return total + 512 * num_classes + num_classes           # fc


def test_resnet18_parameter_count():
    model = build_model("resnet18", C)
    total, trainable = count_params(model)
    assert total == trainable == resnet18_params_by_hand(C) == 11_220_132
    # The only change from torchvision's ImageNet model is the 7x7 -> 3x3 stem conv.
    stock, _ = count_params(stock_resnet18(num_classes=C))
    assert stock - total == 64 * 3 * (7 * 7 - 3 * 3)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.conv1.stride == (1, 1) and model.conv1.bias is None


def test_resnet18_keeps_32x32_resolution_into_layer1():
    model = build_model("resnet18", C).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        assert stem.shape == (2, 64, 32, 32)
        assert model(x).shape == (2, C)


# ----------------------------------------------------------------------------- ViT
def vit_params_by_hand(img_size, patch_size, dim, depth, num_classes):
    d, p = dim, patch_size
    t = (img_size // p) ** 2 + 1                             # patches + class token
    per_block = (2 * d                                       # norm1
                 + 3 * d * d + 3 * d + d * d + d             # qkv + proj, with biases
                 + 2 * d                                     # norm2
                 + 4 * d * d + 4 * d + 4 * d * d + d)        # MLP d -> 4d -> d
    assert per_block == 12 * d * d + 13 * d
    return (3 * p * p * d + d                                # patch-embedding conv
            + d + t * d                                      # class token, position embedding
            + depth * per_block + 2 * d                      # blocks, final norm
            + d * num_classes + num_classes)                 # head


VIT_SHAPES = [dict(img_size=32, **shape) for shape in PRESET_SHAPES] + [
    dict(img_size=24, patch_size=3, dim=96, depth=3, heads=6)]  # odd: 8x8 patches of 3 px


@pytest.mark.parametrize("shape", VIT_SHAPES, ids=lambda s: f"{s['depth']}L-{s['heads']}H-"
                         f"{s['dim']}-p{s['patch_size']}-{s['img_size']}px")
def test_vit_parameter_count_matches_timm_and_formula(shape):
    with torch.device("meta"):  # counting needs shapes only, not memory or init time
        ours = build_model("vit", C, **shape)
        reference = VisionTransformer(
            img_size=shape["img_size"], patch_size=shape["patch_size"], in_chans=3,
            num_classes=C, embed_dim=shape["dim"], depth=shape["depth"],
            num_heads=shape["heads"], mlp_ratio=4, qkv_bias=True, class_token=True,
            global_pool="token")
    hand = vit_params_by_hand(shape["img_size"], shape["patch_size"], shape["dim"],
                              shape["depth"], C)
    assert count_params(ours)[0] == count_params(reference)[0] == hand


def test_vit_init_is_small_truncated_normal():
    torch.manual_seed(0)
    model = build_model("vit", C, dim=128, depth=2, heads=2)
    qkv = model.blocks[0].attn.qkv
    assert 0.019 < qkv.weight.std().item() < 0.021  # 49k samples: std within 5 %
    assert torch.all(qkv.bias == 0) and torch.all(model.head.bias == 0)
    assert 0.01 < model.pos_embed.std().item() < 0.03


def test_vit_rejects_heads_not_dividing_dim_before_allocating(monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("allocated a layer before validating")

    monkeypatch.setattr(nn.Conv2d, "__init__", no_allocation)
    monkeypatch.setattr(nn.Linear, "__init__", no_allocation)
    with pytest.raises(ValueError, match="heads=3 must divide dim=128"):
        build_model("vit", C, dim=128, heads=3)
    with pytest.raises(ValueError, match="patch_size=5 must divide img_size=32"):
        build_model("vit", C, patch_size=5)


def test_vit_rejects_wrong_input_size():
    model = build_model("vit", C, dim=32, depth=1, heads=2, img_size=32)
    with pytest.raises(ValueError, match="img_size=32"):
        model(torch.randn(1, 3, 64, 64))


# ----------------------------------------------------------------------------- registry
def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("resnet50", C)
    for name in ("resnet18", "vit", "swin_tiny", "swin_small"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="resnet18"):
        input_spec("resnet50")


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="dpeth"):
        build_model("vit", C, dpeth=3)
    with pytest.raises(TypeError, match="img_size"):
        build_model("resnet18", C, img_size=32)


def test_swin_rejects_bad_mode_and_img_size():
    with pytest.raises(ValueError, match="mode='frozen'"):
        build_model("swin_tiny", C, mode="frozen")
    with pytest.raises(ValueError, match="img_size=30"):      # not a multiple of the patch
        build_model("swin_tiny", C, img_size=30)


def test_input_spec():
    for name in ("resnet18", "vit"):
        assert input_spec(name) == dict(img_size=32, mean=tuple(CIFAR100_MEAN),
                                        std=tuple(CIFAR100_STD))
    for name in SWIN_TAGS:
        assert input_spec(name) == dict(img_size=224, mean=tuple(IMAGENET_DEFAULT_MEAN),
                                        std=tuple(IMAGENET_DEFAULT_STD))


def test_pinned_tags_are_both_imagenet_1k():
    assert set(SWIN_TAGS) == {n for n in MODELS if n.startswith("swin")}
    for tag in SWIN_TAGS.values():
        assert tag.endswith(".ms_in1k")
        assert timm.models.get_pretrained_cfg(tag).hf_hub_id == f"timm/{tag}"


# Swin at 224 px is the slow case on CPU: one image, one forward/backward per model.
@pytest.mark.parametrize("name,kwargs,size", [
    ("resnet18", {}, 32), ("vit", dict(dim=64, depth=2, heads=4), 32),
    ("swin_tiny", {}, 224), ("swin_small", {}, 224), ("swin_tiny", dict(img_size=64), 64)])
def test_every_model_forward_backward(name, kwargs, size):
    torch.manual_seed(0)
    model = build_model(name, C, **kwargs).train()
    x = torch.randn(2 if size == 32 else 1, 3, size, size)
    logits = model(x)
    assert logits.shape == (x.shape[0], C)
    loss = F.cross_entropy(logits, torch.arange(x.shape[0]))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name,kwargs,size,width", [
    ("resnet18", {}, 32, 512), ("vit", dict(dim=64, depth=2, heads=4), 32, 64),
    ("swin_tiny", dict(img_size=64), 64, 768)])
def test_every_model_has_the_same_api(name, kwargs, size, width):
    """forward == forward_head(forward_features): the trainer and the FLOP counter use
    these without knowing the model; only the ResNet wants channels_last."""
    torch.manual_seed(0)
    model = build_model(name, C, **kwargs).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, width)
        assert torch.allclose(model.forward_head(features), model(x), atol=1e-5)
    assert prefers_channels_last(name) is (name == "resnet18")


# ----------------------------------------------------------------------------- pretrained
@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A stand-in for the ImageNet file: random swin_tiny weights with a 1000-class head."""
    torch.manual_seed(123)
    state = timm.create_model(TINY_TAG, pretrained=False).state_dict()
    assert state["head.fc.weight"].shape == (1000, 768)
    folder = tmp_path_factory.mktemp("weights")
    save_file(state, str(folder / "model.safetensors"))
    torch.save(state, folder / "swin_tiny.pth")
    return folder, state


def assert_backbone_equals(model, state):
    ours = model.backbone.state_dict()
    for key, value in state.items():
        if not key.startswith("head.fc."):
            assert torch.equal(ours[key], value), key


def test_finetune_loads_file_freezes_backbone_and_trains_head(tiny_weights):
    folder, state = tiny_weights
    model = build_model("swin_tiny", C, mode="finetune",
                        weights=str(folder / "model.safetensors"))
    assert_backbone_equals(model, state)
    assert model.head.weight.shape == (C, 768)  # the 1000-class head was dropped
    assert model.frozen_backbone
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.head.fc.weight", "backbone.head.fc.bias"}
    assert count_params(model)[1] == 768 * C + C

    model.train()
    assert not model.backbone.training and model.head.training
    assert not any(m.training for n, m in model.backbone.named_modules()
                   if not n.startswith("head"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    # The backbone runs under no_grad: no graph (and no saved activations), even when
    # something upstream requires grad.
    assert not model.forward_features(x.clone().requires_grad_()).requires_grad
    F.cross_entropy(model(x), torch.tensor([3, 7])).backward()
    opt.step()
    for name, p in model.named_parameters():
        if name in trainable:
            assert not torch.equal(p, before[name]), name
        else:
            assert p.grad is None and torch.equal(p, before[name]), name
    with torch.no_grad():  # forward_head(forward_features(x)) is forward(x)
        assert torch.allclose(model.forward_head(model.forward_features(x)), model(x))


def test_finetune_full_from_pth_trains_everything(tiny_weights):
    folder, state = tiny_weights
    model = build_model("swin_tiny", C, mode="finetune_full", weights=folder / "swin_tiny.pth")
    assert_backbone_equals(model, state)
    assert not model.frozen_backbone
    total, trainable = count_params(model)
    assert total == trainable
    assert model.train().backbone.training


def test_weights_for_another_architecture_are_refused(tiny_weights, tmp_path):
    _, state = tiny_weights
    partial = {k: v for k, v in state.items() if not k.startswith("layers.3.")}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsUnavailableError, match="missing"):
        build_model("swin_tiny", C, mode="finetune", weights=str(tmp_path / "partial.safetensors"))


def test_a_weights_file_that_does_not_load_is_refused_naming_it(tiny_weights, tmp_path):
    """Not a weights file at all, a damaged safetensors file, or tensors of other shapes:
    each a WeightsUnavailableError naming weights=, not the loader's own error."""
    _, state = tiny_weights
    (tmp_path / "text.pth").write_text("not weights")
    (tmp_path / "damaged.safetensors").write_bytes(b"\xff" * 64)
    norm = next(k for k in state if k.endswith("norm1.weight"))
    save_file({k: (v[:-1].contiguous() if k == norm else v) for k, v in state.items()},
              str(tmp_path / "shapes.safetensors"))
    for name in ("text.pth", "damaged.safetensors", "shapes.safetensors"):
        path = str(tmp_path / name)
        with pytest.raises(WeightsUnavailableError, match=f"weights={path!r} cannot be loaded"):
            build_model("swin_tiny", C, mode="finetune", weights=path)


def test_weights_found_in_the_hugging_face_cache(tiny_weights, tmp_path, monkeypatch):
    folder, state = tiny_weights
    snapshot = tmp_path / "hub" / f"models--timm--{SWIN_TAGS['swin_tiny']}" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(folder / "model.safetensors")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the cache alone must be enough
    probes = probe_spy(monkeypatch)
    model = build_model("swin_tiny", C, mode="finetune")
    assert probes == []
    assert_backbone_equals(model, state)


def probe_spy(monkeypatch) -> list:
    """Record each hub probe's (url, timeout), letting the real probe run."""
    calls = []

    def spy(url, timeout):
        calls.append((url, timeout))
        return real(url, timeout)
    real = pretrained.reachable
    monkeypatch.setattr(pretrained, "reachable", spy)
    monkeypatch.setattr(pretrained, "PROBE_MEMORY_S", 0.0)     # no earlier probe counts
    return calls


def test_missing_weights_file_fails_without_asking_the_network(tmp_path, monkeypatch):
    probes = probe_spy(monkeypatch)
    with pytest.raises(WeightsUnavailableError, match="no such file") as err:
        build_model("swin_tiny", C, mode="finetune", weights=str(tmp_path / "nope.safetensors"))
    assert probes == []
    assert "weights=" in str(err.value) and "network" in str(err.value)


def test_a_download_that_fails_after_the_probe_names_the_fixes(tmp_path, monkeypatch):
    """The hub answers the probe, then the download itself fails, raising what the pinned
    huggingface_hub raises (its HTTP client's transport errors, not OSErrors)."""
    import importlib
    import timm.models._hub as timm_hub
    client = next(m for m in ("httpx2", "httpx") if importlib.util.find_spec(m))
    monkeypatch.setenv("HF_HOME", str(tmp_path))          # an empty cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "_hub_reachable", lambda: True)

    def refused(*args, **kwargs):
        raise importlib.import_module(client).ConnectError("connection refused")
    monkeypatch.setattr(timm_hub, "hf_hub_download", refused)
    with pytest.raises(WeightsUnavailableError, match="could not download .*connection refused"):
        build_model("swin_tiny", C, mode="finetune")


def test_one_probe_answers_the_checks_of_one_run(monkeypatch):
    """Experiment.prepare asks whether the weights can be had before the data loads, and
    the model build asks again: the hub is probed once, reachable or not."""
    calls = []
    for answer in (True, False):
        monkeypatch.setattr(pretrained, "_LAST_PROBE", [])
        monkeypatch.setattr(pretrained, "reachable",
                            lambda url, timeout, answer=answer: calls.append(url) or answer)
        assert [pretrained._hub_reachable() for _ in range(3)] == [answer] * 3
    assert len(calls) == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE=1", "hub unreachable"])
def test_no_weights_and_no_network_fails_after_one_bounded_probe(offline, tmp_path, monkeypatch):
    probes = probe_spy(monkeypatch)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    for var in ("HF_HUB_CACHE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    if offline == "HF_HUB_OFFLINE=1":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(WeightsUnavailableError) as err:
        build_model("swin_small", C, mode="finetune_full")
    # HF_HUB_OFFLINE is believed without a probe; otherwise one probe, bounded by its timeout
    assert probes == ([] if offline == "HF_HUB_OFFLINE=1" else
                      [(os.environ["HF_ENDPOINT"], pretrained.HUB_PROBE_TIMEOUT_S)])
    message = str(err.value)
    assert "network" in message and "weights=" in message
    assert "model.safetensors" in message and SWIN_TAGS["swin_small"] in message
    assert not os.listdir(tmp_path)  # nothing was downloaded or half-written
