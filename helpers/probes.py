"""How far a model looks, the numbers behind the claim that self-attention relates the
whole image while a CNN stays local: a ViT's mean attention distance per block and head
(Dosovitskiy et al. 2021, fig. 7), the same for uniform attention, and a CNN's theoretical
receptive field per stage.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def patch_distances(grid: int, patch_px: int) -> torch.Tensor:
    """(grid^2, grid^2) Euclidean distances in pixels between patch centres, row-major."""
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    centres = torch.stack([ys.flatten(), xs.flatten()], 1).double() * patch_px
    return torch.cdist(centres, centres)


def attention_distance_per_image(attn: torch.Tensor, grid: int, patch_px: int) -> torch.Tensor:
    """(B, heads) mean attention distance in pixels of attention maps (B, heads, N, N) over
    the N = grid^2 patch tokens (query rows, key columns), averaged over the query patches
    of each image. Each row is normalised to sum to 1 first, so maps with the class
    token's column removed can be passed as they are."""
    n = grid * grid
    if attn.ndim != 4 or attn.shape[-2:] != (n, n):
        raise ValueError(f"attn: expected (B, heads, {n}, {n}) for a {grid}x{grid} grid, "
                         f"got {tuple(attn.shape)}")
    w = attn.double()
    w = w / w.sum(-1, keepdim=True)
    d = patch_distances(grid, patch_px).to(w.device)
    return (w * d).sum(-1).mean(-1)                       # over the query patches


def uniform_attention_distance(grid: int, patch_px: int) -> float:
    """The mean attention distance of uniform attention: the mean distance between two
    patch centres drawn independently from the grid (a query attends to itself too)."""
    return float(patch_distances(grid, patch_px).mean())


def _attention_probs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The (B, heads, T, T) softmax weights a helpers.models.vit.Attention computes inside
    SDPA for input x, recomputed from its qkv projection."""
    B, T, D = x.shape
    qkv = module.qkv(x).view(B, T, 3, module.heads, D // module.heads)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4)
    return F.softmax(q.float() @ k.float().transpose(-2, -1) / math.sqrt(D // module.heads), -1)


@torch.no_grad()
def vit_attention_distances(model: nn.Module, batches) -> dict:
    """Mean attention distance in pixels of a helpers ViT over every image of `batches` (an
    iterable of (x, y)): {"mean": [block][head], "se": [block][head] (standard error over
    the images)}. Queries and keys are the patch tokens; the class token's row and column
    are left out and each row renormalised over the patches."""
    grid, patch_px = model.img_size // model.patch_size, model.patch_size
    blocks = list(model.blocks)
    per_image: list[list[torch.Tensor]] = [[] for _ in blocks]     # block -> [(B, heads)]
    maps: list[torch.Tensor] = []
    hooks = [b.attn.register_forward_hook(lambda m, inp, out: maps.append(
        _attention_probs(m, inp[0])[:, :, 1:, 1:])) for b in blocks]
    was_training = model.training
    model.eval()
    try:
        for x, _ in batches:
            maps.clear()
            model(x.float())
            for i, a in enumerate(maps):
                per_image[i].append(attention_distance_per_image(a, grid, patch_px).cpu())
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not per_image[0]:
        raise ValueError("vit_attention_distances: no images")
    d = torch.stack([torch.cat(p) for p in per_image])          # (blocks, images, heads)
    se = d.std(1) / math.sqrt(d.shape[1]) if d.shape[1] > 1 else torch.zeros_like(d[:, 0])
    return dict(mean=d.mean(1).tolist(), se=se.tolist())


def receptive_fields(model: nn.Module) -> list[dict]:
    """A CNN's theoretical receptive field, in input pixels, after its stem and after each
    stage ("layer1".."layer4"), walking the convolutions and pools of its main path in
    registration order (torchvision's ResNets register them in forward order). A layer of
    kernel k and stride s grows the field by (k - 1) x the product of the strides before
    it: r' = r + (k - 1) j, j' = j s. Shortcut projections ("downsample") run beside the
    main path and are skipped."""
    r, j, out, stage = 1, 1, [], "stem"
    for name, m in model.named_modules():
        top = name.split(".")[0]
        if top.startswith("layer") and top != stage:
            out.append(dict(stage=stage, receptive_field_px=r, stride_px=j))
            stage = top
        if "downsample" in name or not isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            continue
        k, s = (m.kernel_size, m.stride)
        k, s = (k[0] if isinstance(k, tuple) else k), (s[0] if isinstance(s, tuple) else s)
        r, j = r + (k - 1) * j, j * s
    out.append(dict(stage=stage, receptive_field_px=r, stride_px=j))
    return out
