"""The published SoundNet-8 weights as a :class:`~soundloc.models.sound.SoundNet8` state dict.

The paper's sound stream is SoundNet-8 pretrained by Aytar, Vondrick and Torralba (NeurIPS
2016); the localization paper keeps it fixed. Two releases of those weights exist:

- the authors' Torch7 model ``soundnet8_final.t7`` (read with the ``torchfile`` package):
  ``SpatialConvolution`` layers over a ``[1, T, 1]`` "image" of the waveform, weights
  ``[out, in, k, 1]``, each of conv1-conv7 followed by ``SpatialBatchNormalization``; conv8 is
  two heads, 1000 object classes and 401 scene classes;
- the TensorFlow port's ``sound8.npy``: a pickled dict ``{"conv1": {...}, ..., "conv7",
  "conv8", "conv8_2"}``, each ``{"weights": [k, 1, in, out], "biases"}`` and, for conv1-conv7,
  ``"gamma", "beta", "mean", "var"`` (the Torch7 arrays transposed by ``(2, 3, 1, 0)``). It is
  a *pickle*: loading one runs whatever code it holds, so :func:`read_tf_npy` opens only the
  file the user names.

Both networks were fed the waveform at 22,050 Hz scaled to about [-256, 256] (the TensorFlow
port multiplies audio in [-1, 1] by 256): the converted file records ``input_scale`` 256, which
is :meth:`ModelConfig.paper`'s ``waveform_scale``, and
:meth:`~soundloc.models.sound.SoundNet8.load_weights` refuses it for a network built with
another scale. Batch normalisation uses ε = 1e-5 in both releases, as ``BatchNorm1d`` does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundloc.utils.files import atomic_path

#: The waveform scaling both releases expect (audio in [-1, 1] times 256).
SOUNDNET_INPUT_SCALE = 256.0
#: Layer names shared by the releases, in network order; conv8 is the object head, conv8_2 the scene head.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "conv7", "conv8", "conv8_2")
_BN = ("gamma", "beta", "mean", "var")


def state_from_layers(layers: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """A :class:`SoundNet8` state dict from per-layer arrays in the TensorFlow port's layout
    (``weights`` ``[k, 1, in, out]``, ``biases``, and the batch-norm ``gamma, beta, mean,
    var``). ``ValueError`` names a missing layer or array, or a shape that does not fit."""
    missing = [name for name in LAYERS if name not in layers]
    if missing:
        raise ValueError(f"SoundNet weights lack layer(s) {missing} (expected {list(LAYERS)})")
    state: dict[str, torch.Tensor] = {}
    for i, name in enumerate(LAYERS):
        layer = layers[name]
        need = ("weights", "biases", *(_BN if i < 7 else ()))
        lacking = [k for k in need if k not in layer]
        if lacking:
            raise ValueError(f"SoundNet layer {name} lacks {lacking}")
        w = np.asarray(layer["weights"], dtype=np.float32)
        if w.ndim != 4 or w.shape[1] != 1:
            raise ValueError(f"SoundNet layer {name}: weights of shape {w.shape}, expected [kernel, 1, in, out]")
        conv = torch.from_numpy(np.ascontiguousarray(w[:, 0].transpose(2, 1, 0)))  # [out, in, kernel]
        bias = torch.from_numpy(np.asarray(layer["biases"], dtype=np.float32).reshape(-1).copy())
        prefix = f"conv{i + 1}.0" if i < 7 else ("conv8_objects" if name == "conv8" else "conv8_scenes")
        state[f"{prefix}.weight"], state[f"{prefix}.bias"] = conv, bias
        if i < 7:
            bn = f"conv{i + 1}.1"
            for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "mean"), ("running_var", "var")):
                state[f"{bn}.{ours}"] = torch.from_numpy(np.asarray(layer[theirs], dtype=np.float32).reshape(-1).copy())
            state[f"{bn}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return state


def read_tf_npy(path: str | os.PathLike[str]) -> dict[str, dict[str, np.ndarray]]:
    """The per-layer arrays of the TensorFlow port's ``sound8.npy``. The file is a pickle:
    call this only on a file you chose to trust (the converter opens only the path it is given)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: SoundNet weights file not found")
    try:
        obj = np.load(p, allow_pickle=True, encoding="latin1")
        layers = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == () else obj
    except Exception as exc:
        raise ValueError(f"{p}: cannot read as the TensorFlow port's sound8.npy ({exc})") from exc
    if not isinstance(layers, dict):
        raise ValueError(f"{p}: expected a pickled dict of layers, got {type(layers).__name__}")
    return layers


def _get(obj: Any, key: str) -> Any:
    """``obj[key]`` of a torchfile object, whose keys are ``bytes`` unless it decoded them;
    ``None`` when absent."""
    for k in (key, key.encode()):
        try:
            return obj[k]
        except (KeyError, TypeError, IndexError):
            continue
    return None


def _t7_modules(obj: Any) -> list[Any]:
    """Every module of a torchfile-loaded Torch7 network, depth first, in network order."""
    out = []
    for module in _get(obj, "modules") or []:
        out.append(module)
        out.extend(_t7_modules(module))
    return out


def _typename(module: Any) -> str:
    name = getattr(module, "_typename", b"")
    return name.decode() if isinstance(name, bytes) else str(name)


def layers_from_torch7(net: Any) -> dict[str, dict[str, np.ndarray]]:
    """Per-layer arrays (the TensorFlow port's layout) from a Torch7 SoundNet-8 loaded by
    ``torchfile.load``: its convolutions in order (the 1000-way head is conv8, the 401-way one
    conv8_2), each convolution of conv1-conv7 with the batch normalisation that follows it."""
    convs: list[dict[str, np.ndarray]] = []
    for module in _t7_modules(net):
        kind = _typename(module)
        if kind.endswith("SpatialConvolution"):
            convs.append({"weights": np.asarray(_get(module, "weight")).transpose(2, 3, 1, 0),
                          "biases": np.asarray(_get(module, "bias"))})
        elif kind.endswith("SpatialBatchNormalization"):
            if not convs:
                raise ValueError("Torch7 SoundNet: batch normalisation before any convolution")
            convs[-1].update(gamma=np.asarray(_get(module, "weight")), beta=np.asarray(_get(module, "bias")),
                             mean=np.asarray(_get(module, "running_mean")), var=np.asarray(_get(module, "running_var")))
    if len(convs) != len(LAYERS):
        raise ValueError(f"Torch7 SoundNet: found {len(convs)} convolutions, expected {len(LAYERS)} (SoundNet-8)")
    trunk, heads = convs[:7], sorted(convs[7:], key=lambda c: -c["weights"].shape[-1])  # 1000 objects, then 401 scenes
    return dict(zip(LAYERS, [*trunk, *heads]))


def read_torch7(path: str | os.PathLike[str]) -> dict[str, dict[str, np.ndarray]]:
    """The per-layer arrays of the authors' ``soundnet8_final.t7`` (needs ``pip install torchfile``)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: SoundNet weights file not found")
    try:
        import torchfile
    except ImportError:
        raise ValueError(f"{p}: reading Torch7 files needs the torchfile package (pip install torchfile)") from None
    try:
        net = torchfile.load(str(p))
    except Exception as exc:
        raise ValueError(f"{p}: cannot read as a Torch7 file ({exc})") from exc
    return layers_from_torch7(net)


def convert_soundnet(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The :class:`SoundNet8` state dict of a release file: ``.t7`` (Torch7) or ``.npy``
    (TensorFlow port)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".t7":
        return state_from_layers(read_torch7(path))
    if suffix == ".npy":
        return state_from_layers(read_tf_npy(path))
    raise ValueError(f"{path}: expected soundnet8_final.t7 (Torch7) or sound8.npy (TensorFlow port)")


def save_soundnet_weights(path: str | os.PathLike[str], state: dict[str, torch.Tensor], source: str = "") -> Path:
    """Write the state dict with the input scale it expects (``{"state_dict", "input_scale",
    "source"}``), atomically; ``ModelConfig(sound_weights_path=...)`` loads it."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "input_scale": SOUNDNET_INPUT_SCALE, "source": source}, tmp)
    return Path(path)


__all__ = [
    "LAYERS",
    "SOUNDNET_INPUT_SCALE",
    "convert_soundnet",
    "layers_from_torch7",
    "read_tf_npy",
    "read_torch7",
    "save_soundnet_weights",
    "state_from_layers",
]
