"""helpers.measure: parameter counts, thop MACs and exact FLOPs against hand-derived formulas."""
import copy

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers.grid import VIT_SHAPES
from benchmarks.benchmark import train_step_flops
from helpers.measure import (UncountedOpError, is_compute_op, count_params, counting_flops,
                             exact_flops, measure, thop_macs)
from helpers.models import SwinClassifier, build_model

C = 100  # CIFAR-100 classes


def resnet18_cifar_convs(size=32):
    """Every conv of the CIFAR ResNet-18 as (output side, C_in, C_out, kernel), by hand."""
    convs = [(size, 3, 64, 3)]                                   # 3x3 stride-1 stem, no max-pool
    c_in = 64
    for stage, c_out in enumerate((64, 128, 256, 512)):
        side = size // 2 ** stage                                # stages 2-4 halve the side
        convs += [(side, c_in, c_out, 3), (side, c_out, c_out, 3)]  # block 1
        if c_in != c_out:
            convs.append((side, c_in, c_out, 1))                 # 1x1 stride-2 shortcut
        convs += [(side, c_out, c_out, 3)] * 2                   # block 2
        c_in = c_out
    return convs


def resnet18_macs(num_classes=C, size=32):
    """Conv + linear multiply-adds: H_out * W_out * C_out * C_in * k * k per conv, plus fc."""
    return sum(s * s * co * ci * k * k for s, ci, co, k in resnet18_cifar_convs(size)) \
        + 512 * num_classes


def vit_counts(patch_size, dim, depth, heads, img_size=32, num_classes=C):
    """(matmul MACs excluding attention, attention-matmul MACs) of one ViT forward.

    Per block: qkv 3Td^2 + proj Td^2 + MLP 8Td^2 = 12Td^2, and Q K^T + attn @ V = 2T^2 d
    (summed over heads), with T = patches + class token. Plus the patch-embedding conv
    (N patches x d outputs x 3p^2 inputs) and the head on the class token only.
    """
    n = (img_size // patch_size) ** 2
    t = n + 1
    linear = depth * 12 * t * dim ** 2 + n * dim * 3 * patch_size ** 2 + dim * num_classes
    attention = depth * 2 * t ** 2 * dim
    return linear, attention, t


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return build_model("resnet18", C)


def test_count_params_total_and_trainable():
    model = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == (10 * 5 + 5 + 5 * 2 + 2, 5 + 5 * 2 + 2)


def test_resnet18_exact_flops_match_conv_formula(resnet):
    # FlopCounterMode counts conv and matmul ops only (not BN, ReLU, pooling, adds), at
    # 2 FLOPs per multiply-add, so it must equal twice the conv+linear MACs exactly.
    assert exact_flops(resnet, 32) == 2 * resnet18_macs()


def test_resnet18_thop_close_to_conv_formula(resnet):
    # thop counts the same conv/linear MACs plus a few ops per BatchNorm element and the
    # average pool (ReLU is zero); those add well under 1 % for ResNet-18 at 32x32.
    macs = resnet18_macs()
    assert macs <= thop_macs(resnet, 32) <= 1.01 * macs


@pytest.mark.parametrize("preset", range(len(VIT_SHAPES)))
def test_vit_exact_flops_and_thop_gap(preset):
    shape = VIT_SHAPES[preset]
    torch.manual_seed(0)
    model = build_model("vit", C, img_size=32, **shape)
    linear, attention, t = vit_counts(**shape)
    exact = exact_flops(model, 32)
    assert exact == 2 * (linear + attention)
    thop = thop_macs(model, 32)
    # thop never sees the attention matmuls inside scaled_dot_product_attention; what it
    # adds instead is 4 ops per LayerNorm element (2 norms per block + the final one).
    layernorm_ops = 4 * t * shape["dim"] * (2 * shape["depth"] + 1)
    gap = exact / 2 - thop
    assert gap == pytest.approx(attention - layernorm_ops, rel=1e-3)
    assert 0.9 * attention < gap <= attention


def test_thop_misses_multihead_attention_module():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

        def forward(self, x):  # (1, 3, S, S) -> (1, 3S, S) tokens of width S=16
            tokens = x.flatten(1, 2)
            return self.attn(tokens, tokens, tokens)[0]

    model = Tokens()
    assert thop_macs(model, 16) == 0
    # exact_flops turns off MultiheadAttention's fused inference path, which
    # FlopCounterMode cannot see, so the projections and attention are all counted.
    t, d = 3 * 16, 16
    # in-projection 3Td^2, out-projection Td^2, attention 2T^2 d
    assert exact_flops(model, 16) == 2 * (4 * t * d * d + 2 * t * t * d)


def test_thop_leaves_the_original_model_loadable(resnet):
    keys = list(resnet.state_dict())
    saved = copy.deepcopy(resnet.state_dict())
    result = measure(resnet, 32)
    assert list(resnet.state_dict()) == keys  # no total_ops / total_params buffers
    assert not any(hasattr(m, "total_ops") for m in resnet.modules())
    resnet.load_state_dict(saved)  # strict load still works
    fresh = build_model("resnet18", C)
    fresh.load_state_dict(resnet.state_dict())
    from test_models import resnet18_params_by_hand
    n = resnet18_params_by_hand(C)
    assert result == dict(params=n, trainable_params=n,
                          macs_thop=thop_macs(resnet, 32), flops=2 * resnet18_macs())


def test_measuring_keeps_train_eval_mode(resnet):
    resnet.train()
    exact_flops(resnet, 32)
    thop_macs(resnet, 32)
    train_step_flops(resnet, 32)
    assert all(m.training for m in resnet.modules())
    assert all(p.grad is None for p in resnet.parameters())
    resnet.eval()
    exact_flops(resnet, 32)
    assert not any(m.training for m in resnet.modules())


def test_resnet18_train_step_is_three_forwards_minus_stem_input_grad(resnet):
    # Backward of each conv/linear costs two forwards (grad wrt input and wrt weight),
    # except the stem conv, whose input (the image) needs no gradient.
    stem = 2 * 32 * 32 * 64 * 3 * 3 * 3
    assert train_step_flops(resnet, 32) == 3 * 2 * resnet18_macs() - stem


def test_frozen_swin_train_step_counts_only_the_head_backward():
    torch.manual_seed(0)
    backbone = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False,
                                 num_classes=C, img_size=64)
    frozen = SwinClassifier(backbone, frozen_backbone=True)
    forward = exact_flops(frozen, 64)
    # Only the head's weight gradient runs: (C x 1) @ (1 x 768) -> 2 * 768 * C FLOPs;
    # no gradient flows into the features, so nothing of the backbone is differentiated.
    assert train_step_flops(frozen, 64) == forward + 2 * 768 * C
    full = SwinClassifier(timm.create_model("swin_tiny_patch4_window7_224", num_classes=C,
                                            img_size=64), frozen_backbone=False)
    assert train_step_flops(full, 64) > 2.5 * forward


# ----------------------------------------------------------------------------- attention
@pytest.mark.parametrize("shape", [dict(patch_size=8, dim=96, depth=3, heads=3),
                                   dict(patch_size=2, dim=48, depth=1, heads=6)])
def test_odd_vit_exact_flops_equal_the_formula(shape):
    torch.manual_seed(0)
    model = build_model("vit", C, img_size=32, **shape)
    linear, attention, _ = vit_counts(**shape)
    assert exact_flops(model, 32) == 2 * (linear + attention)


def test_attention_alone_counts_4_b_h_t2_d_forward_and_twice_that_backward():
    B, h, T, d = 3, 2, 17, 8
    q, k, v = (torch.randn(B, h, T, d, requires_grad=True) for _ in range(3))
    with counting_flops() as counter:
        out = F.scaled_dot_product_attention(q, k, v)
    forward = counter.get_total_flops()
    assert forward == 4 * B * h * T * T * d          # Q K^T and attn @ V
    with counting_flops() as counter:
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    # backward: two matmuls for each forward matmul (gradient wrt each operand)
    assert counter.get_total_flops() == 3 * forward
    assert out.shape == (B, h, T, d)


def test_a_compute_op_without_formula_raises(monkeypatch):
    # Take away the formulas for Linear's matmuls: counting must refuse, not report 0.
    from torch.utils import flop_counter
    reduced = {k: f for k, f in flop_counter.flop_registry.items()
               if k not in (torch.ops.aten.mm, torch.ops.aten.addmm)}
    monkeypatch.setattr(flop_counter, "flop_registry", reduced)
    with pytest.raises(UncountedOpError, match="addmm"):
        exact_flops(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5)), 4)


@pytest.mark.parametrize("name, compute", [
    ("aten._scaled_dot_product_flash_attention_for_cpu", True),
    ("aten.convolution_backward", True), ("aten.mkldnn_convolution", True),
    ("aten.bmm", True), ("aten._int_mm", True), ("aten.linear", True),
    ("aten.cummax", False), ("aten.add", False), ("aten.softmax", False),
    ("aten.native_layer_norm", False)])
def test_which_ops_must_have_a_formula(name, compute):
    assert is_compute_op(name) is compute


@pytest.mark.parametrize("preset", [0, 1])   # the two smallest of Table 1
def test_vit_train_step_is_three_forwards_minus_the_patch_embedding_input_grad(preset):
    # As for ResNet-18: every matmul's backward is two matmuls of the same size (one per
    # operand), attention's Q K^T and attn @ V included, except that the image needs no
    # gradient, so the patch-embedding conv has only its weight gradient.
    shape = VIT_SHAPES[preset]
    torch.manual_seed(0)
    model = build_model("vit", C, img_size=32, **shape)
    linear, attention, _ = vit_counts(**shape)
    forward = 2 * (linear + attention)
    p = shape["patch_size"]
    patch_embed = 2 * (32 // p) ** 2 * shape["dim"] * 3 * p * p
    assert train_step_flops(model, 32) == 3 * forward - patch_embed
