"""ImageNet weights for Swin: a local file, the Hugging Face hub cache, or a download.

Offline, the hub is probed with a short HEAD request first (helpers.net.reachable), so a
missing file fails in seconds with a message naming both fixes (a network, or a local
weights file).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import time

import torch.nn as nn

from ..net import reachable

HUB_PROBE_TIMEOUT_S = 3.0


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded here."""


def _hf_cache_dir() -> str:
    # Read at call time (huggingface_hub reads these at import time), same precedence.
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _cached_hub_file(repo_id: str) -> str | None:
    """A weights file for repo_id already in the local Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):  # timm's preference order
        path = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir())
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


_LAST_PROBE: list[tuple] = []        # (time.monotonic(), answer) of the last probe
PROBE_MEMORY_S = 60.0                # a probe's answer is believed this long (a grid's rows)


def hub_url() -> str:
    """The Hugging Face hub timm downloads from: HF_ENDPOINT, read at call time."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Does the hub answer within `timeout`? The answer is remembered for PROBE_MEMORY_S,
    so the grid's four fine-tune rows pay one probe offline, and a run's check before its
    data loads and its model build share one."""
    if _LAST_PROBE and time.monotonic() - _LAST_PROBE[0][0] < PROBE_MEMORY_S:
        return _LAST_PROBE[0][1]
    ok = reachable(hub_url(), timeout)
    _LAST_PROBE[:] = [(time.monotonic(), ok)]
    return ok


def weights_hint(tag: str, repo_id: str) -> str:
    return (f"Fixes: (1) connect this machine to the network (huggingface.co), or "
            f"(2) download the weights on another machine - 'model.safetensors' from "
            f"https://huggingface.co/{repo_id} (timm tag {tag}) - copy the file here and pass "
            f"weights=<path to the local .safetensors/.pth file>. Or use mode='scratch'.")


def resolve_weights(tag: str, weights: str | os.PathLike | None) -> str | None:
    """The local weights file to load, or None to let timm download from the hub.

    Decides quickly: a missing file or an unreachable hub fails in seconds, instead of
    after a minute of download retries deep inside timm.
    """
    import timm

    repo_id = timm.models.get_pretrained_cfg(tag).hf_hub_id
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(f"weights={path!r}: no such file. "
                                          + weights_hint(tag, repo_id))
        return path
    cached = _cached_hub_file(repo_id)
    if cached:
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise WeightsUnavailableError(
            f"pretrained weights for {tag} are not in the Hugging Face cache ({_hf_cache_dir()}) "
            "and HF_HUB_OFFLINE is set. " + weights_hint(tag, repo_id))
    if not _hub_reachable():
        raise WeightsUnavailableError(
            f"pretrained weights for {tag} are not in the Hugging Face cache ({_hf_cache_dir()}) "
            f"and the hub is unreachable (no network within {HUB_PROBE_TIMEOUT_S:.0f} s). "
            + weights_hint(tag, repo_id))
    return None


def check_file_matches(model: nn.Module, path: str, tag: str) -> None:
    """Fail if the file's backbone tensors are not exactly the model's.

    timm loads non-strictly when it replaces the 1000-class head, so a file for another
    architecture (say swin_small into swin_tiny) would otherwise load partially, silently.
    """
    from timm.models import load_state_dict
    from timm.models.swin_transformer import checkpoint_filter_fn

    state = checkpoint_filter_fn(load_state_dict(path), model)  # same key mapping timm applies
    head = {"head.fc.weight", "head.fc.bias"}
    missing = sorted(set(model.state_dict()) - set(state) - head)
    unexpected = sorted(set(state) - set(model.state_dict()) - head)
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"weights={path!r} do not fit {tag}: {len(missing)} missing tensors {missing[:3]}, "
            f"{len(unexpected)} unexpected tensors {unexpected[:3]}")


def download_errors() -> tuple:
    """What a failed download raises: OSError (huggingface_hub's HTTP and offline errors)
    and the transport errors of its HTTP client, httpx or (newer hubs) httpx2, which are
    not OSErrors."""
    errors = [OSError]
    for client in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError):
            errors.append(importlib.import_module(client).HTTPError)
    return tuple(errors)
