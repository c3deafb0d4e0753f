"""A compact Vision Transformer, written out: the part of the homework to read."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Multi-head self-attention; the T x T attention itself runs inside SDPA."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # q, k and v for all heads in one matmul
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, D // self.heads)  # (B, T, 3, h, D/h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                         # each (B, h, T, D/h)
        x = F.scaled_dot_product_attention(q, k, v)                   # (B, h, T, D/h)
        x = x.transpose(1, 2).reshape(B, T, D)                        # heads side by side again
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Vision Transformer classifier (Dosovitskiy et al. 2021), same layout as timm's.

    Image (B, 3, S, S) -> (S/p)^2 patch tokens + 1 class token -> `depth` blocks ->
    LayerNorm -> linear head on the class token.
    """

    def __init__(self, num_classes: int = 100, *, img_size: int | None = 32, patch_size: int = 4,
                 dim: int = 256, depth: int = 4, heads: int = 4):
        img_size = 32 if img_size is None else img_size
        for name, value in dict(num_classes=num_classes, img_size=img_size, patch_size=patch_size,
                                dim=dim, depth=depth, heads=heads).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ViT {name}={value!r}: must be a positive integer")
        if dim % heads:  # checked before any weight is allocated
            raise ValueError(f"ViT heads={heads} must divide dim={dim}")
        if img_size % patch_size:
            raise ValueError(f"ViT patch_size={patch_size} must divide img_size={img_size}")
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        num_tokens = (img_size // patch_size) ** 2 + 1                 # patches + class token
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))  # learned, one per token
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # timm's recipe: small truncated-normal weights, zero biases, LayerNorm at (1, 0).
        # (Like timm, the cut is at +-2 absolute, i.e. 100 std: in effect a plain normal.)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        """What AdamW leaves undecayed beyond 1-D tensors (timm's convention)."""
        return {"cls_token", "pos_embed"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"ViT built for img_size={self.img_size} got images of shape "
                             f"{tuple(x.shape)}; resize the input or rebuild with that img_size")
        x = self.patch_embed(x)                        # (B, D, S/p, S/p)
        x = x.flatten(2).transpose(1, 2)               # (B, N, D), N = (S/p)^2 patches
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, T, D), T = N + 1
        x = self.norm(self.blocks(x))                  # (B, T, D)
        return x[:, 0]                                 # the class token, (B, D)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)                     # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

