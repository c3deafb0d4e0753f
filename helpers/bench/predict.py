"""Which measured variant would train a run fastest: the benchmark's own verdict, reported
beside its figures. It never steers training (helpers.speed holds the defaults).

The rule, per run: the variant whose predicted time is least,
    images the run trains / measured images per second + one-off compile cost,
where the compile cost is the measured extra warm-up (training and evaluation) over the
plain path's, cold or with a warm compile cache.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..speed import variant_name


def _one_off(timing: dict, warm: bool) -> float:
    """Warm-up seconds (training + evaluation) of a variant: cold, or with a warm cache."""
    src = timing.get("warm") if warm and timing.get("warm") else timing
    return src["warmup_s"] + src.get("eval_warmup_s", 0.0)



@dataclass(frozen=True)
class Scored:
    """One measured variant's predicted time for a run."""
    options: tuple            # (fused_attention, compile, compile_scope)
    images_per_s: float
    compile_s: float          # one-off extra warm-up over the plain path (0 when eager)
    warm: bool                # compile_s is the warm-cache figure
    predicted_s: float

    @property
    def name(self) -> str:
        return variant_name(*self.options)


def pick(variants: dict[str, dict], images: int, *, swin: bool, compile=None, scope=None,
         fused=None, warm: set = frozenset()) -> list[Scored]:
    """Every measured variant the fixed options allow, scored for a run of `images`
    training images, fastest first (ties keep the plainer variant first). `variants`
    maps a variant name to its benchmark timing; `warm` names the variants whose kernels
    are in the compile cache. Empty when the plain path itself was not measured."""
    base = variants.get("eager")
    if base is None:
        return []
    scored = []
    for f in ((False, True) if swin else (False,)):
        for comp, sc in ((False, "model"), (True, "model"), (True, "blocks")):
            if ((fused is not None and f != fused) or (compile is not None and comp != compile)
                    or (scope is not None and comp and sc != scope)):
                continue
            timing = variants.get(variant_name(f, comp, sc))
            if timing is None:
                continue
            is_warm = comp and variant_name(f, comp, sc) in warm
            cost = max(0.0, _one_off(timing, is_warm) - _one_off(base, False)) if comp else 0.0
            scored.append(Scored((f, comp, sc), timing["images_per_s"], cost, is_warm,
                                 images / timing["images_per_s"] + cost))
    return sorted(scored, key=lambda s: s.predicted_s)      # stable: plain variants first


def break_even_images(plain_ips: float, ips: float, compile_s: float) -> float | None:
    """Training images after which a variant's one-off cost has paid for itself, or None
    if it is not faster per image."""
    saved = 1 / plain_ips - 1 / ips
    return compile_s / saved if saved > 0 else None


