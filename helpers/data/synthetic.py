"""The synthetic CIFAR-shaped images: a learnable stand-in for CIFAR-100 offline.

Each class is a (shape, colour, texture) triple drawn at a random position and scale over
a random grey background, plus pixel noise. The factors are shared across classes, so a
CNN learns them quickly, but no single pixel gives a class away. Pure numpy, vectorised
over the images. `helpers.data.make_synthetic` wraps this into a `Dataset`.
"""
from __future__ import annotations

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "ring")
COLOURS = {"red": (0.90, 0.12, 0.10), "green": (0.10, 0.75, 0.15), "blue": (0.15, 0.30, 0.95),
           "yellow": (0.95, 0.85, 0.10), "magenta": (0.85, 0.15, 0.85)}
TEXTURES = ("solid", "hstripes", "vstripes", "checks")   # all symmetric under a left-right flip
_CHUNK = 4096   # images rendered at once: bounds the float32 working memory


def synthetic_class(k: int) -> tuple[str, str, str]:
    """Class k -> (shape, colour, texture); shape varies fastest, so any C <= 100 classes
    are distinct and small C still mixes shapes and colours."""
    nS, nC = len(SHAPES), len(COLOURS)
    return SHAPES[k % nS], list(COLOURS)[(k // nS) % nC], TEXTURES[k // (nS * nC)]


def _shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the shape's edge, in units of its radius (< 0 inside)."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - 1
    if shape == "square":
        return np.maximum(ax, ay) - 0.8
    if shape == "triangle":   # apex up (y grows downwards), base at dy = 0.9
        return np.maximum(dy - 0.9, (ax - (dy + 1.1) / 2) * 0.9)
    if shape == "cross":      # union of two bars of half-width 0.3
        return np.minimum(np.maximum(ax, ay / 0.3), np.maximum(ax / 0.3, ay)) - 1
    if shape == "ring":
        return np.abs(np.sqrt(dx * dx + dy * dy) - 0.75) - 0.25
    raise ValueError(shape)


def _render(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    f32 = np.float32
    # Per-image variation: centre, radius (pixels), colour gain, background, texture phase.
    cx, cy = (rng.uniform(0.3, 0.7, (2, n)) * size).astype(f32)
    r = (rng.uniform(0.2, 0.32, n) * size).astype(f32)
    gain = rng.uniform(0.75, 1.1, n).astype(f32)
    bg = (rng.uniform(0.15, 0.55, (n, 1)) + rng.uniform(-0.06, 0.06, (n, 3))).astype(f32)
    period = (rng.uniform(0.11, 0.16, n) * size).astype(f32)
    phase = rng.uniform(0, 1, (2, n)).astype(f32)

    grid = np.arange(size, dtype=f32) + 0.5
    yy, xx = grid[None, :, None], grid[None, None, :]            # broadcast to (n, S, S)
    dx = (xx - cx[:, None, None]) / r[:, None, None]             # (n, S, S), radius units
    dy = (yy - cy[:, None, None]) / r[:, None, None]
    mask = np.empty((n, size, size), f32)
    tex = np.ones((n, size, size), f32)
    shape_id = labels % len(SHAPES)
    colour_id = (labels // len(SHAPES)) % len(COLOURS)
    texture_id = labels // (len(SHAPES) * len(COLOURS))
    for s, shape in enumerate(SHAPES):
        i = np.nonzero(shape_id == s)[0]
        # sdf * radius = distance in pixels -> a 1-pixel anti-aliased edge
        mask[i] = np.clip(0.5 - _shape_sdf(shape, dx[i], dy[i]) * r[i, None, None], 0, 1)
    p = period[:, None, None]
    h = ((yy / p + phase[0, :, None, None]) % 1) < 0.5           # (n, S, 1) stripes along x
    v = ((xx / p + phase[1, :, None, None]) % 1) < 0.5           # (n, 1, S) stripes along y
    for t, texture in enumerate(TEXTURES):
        i = np.nonzero(texture_id == t)[0]
        if texture == "hstripes":
            tex[i] = np.where(h[i], 1.0, 0.3)
        elif texture == "vstripes":
            tex[i] = np.where(v[i], 1.0, 0.3)
        elif texture == "checks":
            tex[i] = np.where(h[i] ^ v[i], 1.0, 0.3)
    fg = np.asarray(list(COLOURS.values()), f32)[colour_id] * gain[:, None]     # (n, 3)
    m = mask[..., None]                                                         # (n, S, S, 1)
    img = bg[:, None, None, :] * (1 - m) + fg[:, None, None, :] * (tex[..., None] * m)
    img += rng.standard_normal(img.shape, dtype=f32) * f32(0.06)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)                    # (n, S, S, 3)


def synthetic_split(n: int, num_classes: int, size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % num_classes)   # balanced to within one image
    x = np.concatenate([_render(labels[i:i + _CHUNK], size, rng) for i in range(0, n, _CHUNK)])
    return x, labels.astype(np.int64)
