"""DeviceLoader: batches built on the device from a uint8 dataset held there.

The images are copied to the device once. Every batch is made with whole-batch tensor ops
(gather-based crop + flip, optional bilinear resize, normalisation), so no per-image
Python, no PIL, and no host<->device copies happen inside an epoch.

The resize is the one step that touches every output pixel (602 KB of float32 per 224-px
image). On CUDA it is F.interpolate's fused kernel. On a CPU it is the same bilinear map
written as two matrix products, W_y @ X @ W_x^T, which runs on BLAS and can write straight
into a buffer the loader keeps (`reuse_output`): a fresh 224-px batch is a new mmap whose
page faults cost more than the resize itself (see benchmarks/README.md).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

def bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32 weights of 1-D bilinear resampling, sampled as
    F.interpolate(mode="bilinear", align_corners=False, antialias=False) samples: output
    pixel i reads the input at (i + 0.5) * n_in / n_out - 0.5, clamped to the edges.
    Each row has at most two non-zero weights and sums to 1."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"bilinear_matrix({n_in}, {n_out}): sizes must be >= 1")
    # float32 and this operation order, as PyTorch's CPU kernel computes its source index:
    # the weights then agree with F.interpolate's to the last bit or so.
    scale = torch.tensor(n_in, dtype=torch.float32) / n_out
    src = (scale * (torch.arange(n_out, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=n_in - 1)
    frac = src - lo
    hi = (lo + 1).clamp(max=n_in - 1)
    w = torch.zeros(n_out, n_in)
    rows = torch.arange(n_out)
    w.index_put_((rows, lo), 1 - frac, accumulate=True)
    w.index_put_((rows, hi), frac, accumulate=True)
    return w


class DeviceLoader:
    """Batches from a uint8 dataset held on the device, deterministic given (seed, epoch).

    Each epoch draws its permutation, crop offsets and flips from a generator seeded by
    (seed, epoch) alone, so resuming at epoch k reproduces an uninterrupted run exactly.

    reuse_output=True lets a CPU loader write every resized batch into one buffer it keeps,
    so a batch is valid only until the next is drawn (fine for train_epoch and evaluate,
    not for `list(loader.epoch(e))`). Nothing changes on CUDA or without a resize.

    resize: 'matmul' (two matrix products) or 'interpolate' (F.interpolate's kernel);
    'auto' takes matmul on a CPU and interpolate elsewhere, so either branch, the GPU's
    included, can be run and compared on a CPU.
    """
    RESIZES = ("auto", "matmul", "interpolate")
    PAD = 4

    def __init__(self, x_uint8_nhwc: torch.Tensor, y: torch.Tensor, *, batch_size: int,
                 device, mean, std, train: bool, augment: bool = True,
                 img_size: int | None = None, seed: int = 0, channels_last: bool = False,
                 drop_last: bool | None = None, reuse_output: bool = False,
                 resize: str = "auto"):
        if (x_uint8_nhwc.dtype != torch.uint8 or x_uint8_nhwc.ndim != 4
                or x_uint8_nhwc.shape[-1] != 3):
            raise ValueError(f"x: expected uint8 (N, H, W, 3), got {x_uint8_nhwc.dtype} "
                             f"{tuple(x_uint8_nhwc.shape)}")
        if y.ndim != 1 or len(y) != len(x_uint8_nhwc):
            raise ValueError(f"y: expected ({len(x_uint8_nhwc)},) labels, got {tuple(y.shape)}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean={mean!r}, std={std!r}: need 3 values each, std > 0")
        if resize not in self.RESIZES:
            raise ValueError(f"resize={resize!r}: must be one of {', '.join(self.RESIZES)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: must be a positive integer")
        self.device = torch.device(device)
        self.batch_size, self.train, self.augment = batch_size, train, augment and train
        self.img_size, self.seed, self.channels_last = img_size, seed, channels_last
        self.drop_last = train if drop_last is None else drop_last
        self.reuse_output, self._out = reuse_output, None
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
        _, h, w, _ = self.x.shape
        self.resized = img_size is not None and (img_size, img_size) != (h, w)
        if resize == "auto":
            resize = "matmul" if self.device.type == "cpu" else "interpolate"
        self.resize = resize if self.resized else None
        if self.resize == "matmul":
            self.w_rows = bilinear_matrix(h, img_size)          # (S, H)
            self.w_cols_t = bilinear_matrix(w, img_size).T      # (W, S)

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
        x = x.permute(0, 3, 1, 2)                      # (B, 3, H, W), channels_last strides
        # Normalising before resizing is exact (bilinear weights sum to 1) and, at 224 px,
        # touches 49x fewer pixels.
        if self.resize == "matmul":
            x = self._matmul_resize(x)
        elif self.resize == "interpolate":
            x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear",
                              align_corners=False, antialias=False)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)

    def _matmul_resize(self, x: torch.Tensor) -> torch.Tensor:
        """Bilinear resize as W_rows @ x @ W_cols^T. With reuse_output both products are
        written into buffers the loader keeps. Output is contiguous NCHW."""
        B, C, _, W = x.shape
        S = self.img_size
        if self.reuse_output:
            if self._out is None:
                n = min(self.batch_size, self.num_images)
                self._out = (torch.empty(n, C, S, W), torch.empty(n, C, S, S))
            rows, out = self._out[0][:B], self._out[1][:B]
        else:
            rows, out = torch.empty(B, C, S, W), torch.empty(B, C, S, S)
        torch.matmul(self.w_rows, x, out=rows)                    # (B, C, S, W)
        torch.matmul(rows.view(B * C * S, W), self.w_cols_t, out=out.view(B * C * S, S))
        return out
