"""DeviceLoader: batches built on the device from a uint8 dataset held there.

The images are copied to the device once. Every batch is made with whole-batch tensor ops
(gather-based crop + flip, optional bilinear resize, normalisation), so no per-image
Python, no PIL, and no host<->device copies happen inside an epoch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

class DeviceLoader:
    """Batches from a uint8 dataset held on the device, deterministic given (seed, epoch).

    Each epoch draws its permutation, crop offsets and flips from a generator seeded by
    (seed, epoch) alone, so resuming at epoch k reproduces an uninterrupted run exactly.
    """
    PAD = 4

    def __init__(self, x_uint8_nhwc: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 device, mean, std, train: bool, augment: bool = True,
                 img_size: int | None = None, seed: int = 0, channels_last: bool = False,
                 drop_last: bool | None = None):
        if x_uint8_nhwc.dtype != torch.uint8 or x_uint8_nhwc.ndim != 4 or x_uint8_nhwc.shape[-1] != 3:
            raise ValueError(f"x: expected uint8 (N, H, W, 3), got {x_uint8_nhwc.dtype} "
                             f"{tuple(x_uint8_nhwc.shape)}")
        if y.ndim != 1 or len(y) != len(x_uint8_nhwc):
            raise ValueError(f"y: expected ({len(x_uint8_nhwc)},) labels, got {tuple(y.shape)}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean={mean!r}, std={std!r}: need 3 values each, std > 0")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
        self.device = torch.device(device)
        self.batch_size, self.train, self.augment = batch_size, train, augment and train
        self.img_size, self.seed, self.channels_last = img_size, seed, channels_last
        self.drop_last = train if drop_last is None else drop_last
        self.num_images = len(y)
        if self.drop_last and self.num_images < batch_size:
            raise ValueError(f"batch_size={batch_size} exceeds the {self.num_images} images and "
                             "drop_last=True, so an epoch would have no batches; lower batch_size")
        self.x = x_uint8_nhwc.to(self.device).contiguous()    # (N, H, W, 3) uint8, copied once
        self.y = y.to(self.device, torch.int64)
        # (x/255 - mean)/std folded into one multiply-add on the raw bytes.
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device)
        self.scale = 1 / (255 * std_t)
        self.shift = -torch.tensor(mean, dtype=torch.float32, device=self.device) / std_t

    def __len__(self) -> int:
        n, b = self.num_images, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def _generator(self, epoch: int) -> torch.Generator:
        g = torch.Generator(device=self.device)
        # SeedSequence mixes (seed, epoch) so nearby pairs give unrelated streams.
        g.manual_seed(int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0]))
        return g

    def _shuffle(self, epoch: int):
        g = self._generator(epoch)
        return g, torch.randperm(self.num_images, generator=g, device=self.device)

    def order(self, epoch: int) -> torch.Tensor:
        """The training permutation of `epoch`: what `epoch()` iterates over. Anything that
        must visit the images in the same order (e.g. cached features) uses this."""
        return self._shuffle(epoch)[1]

    def epoch(self, epoch: int):
        """Iterator of (x float32 (B, 3, S, S) normalised, y int64 (B,)), both on the device."""
        n, b = self.num_images, self.batch_size
        if self.train:
            g, order = self._shuffle(epoch)
            if self.augment:   # drawn for the whole epoch at once: 3 kernel launches, not 3/batch
                shifts = torch.randint(0, 2 * self.PAD + 1, (n, 2), generator=g, device=self.device)
                flips = torch.randint(0, 2, (n,), generator=g, device=self.device).bool()
        for i in range(0, len(self) * b, b):
            if not self.train:
                xb, yb = self.x[i:i + b], self.y[i:i + b]
            elif self.augment:
                idx = order[i:i + b]
                xb, yb = self._crop_flip(self.x[idx], shifts[idx], flips[idx]), self.y[idx]
            else:
                idx = order[i:i + b]
                xb, yb = self.x[idx], self.y[idx]
            yield self._to_float(xb), yb

    def _crop_flip(self, xb: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Random crop of the zero-padded image plus optional mirror, as one gather."""
        B, H, W, _ = xb.shape
        P = self.PAD
        padded = F.pad(xb, (0, 0, P, P, P, P))                    # (B, H+2P, W+2P, 3), zeros
        rows = shift[:, :1] + torch.arange(H, device=xb.device)   # (B, H) source rows
        cols = shift[:, 1:] + torch.arange(W, device=xb.device)   # (B, W) source columns
        # A mirrored crop reads its columns right-to-left.
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        bi = torch.arange(B, device=xb.device)[:, None, None]
        return padded[bi, rows[:, :, None], cols[:, None, :]]     # (B, H, W, 3)

    def _to_float(self, xb: torch.Tensor) -> torch.Tensor:
        x = torch.addcmul(self.shift, xb.float(), self.scale)     # (B, H, W, 3) normalised
        x = x.permute(0, 3, 1, 2)                                 # (B, 3, H, W), channels_last strides
        if self.img_size is not None and self.img_size != x.shape[-1]:
            # Normalising first is exact (bilinear weights sum to 1) and 49x cheaper at 224 px.
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear",
                              align_corners=False, antialias=False)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)
