"""The world's sounds: class signatures, jittered clips, a context's ambient noise."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from soundloc.data.synthetic.config import WorldConfig


@dataclass(frozen=True)
class Signature:
    """The sound of one class: what every clip of the class shares (before jitter).

    ``f0`` fundamental (Hz); ``n_harmonics`` and ``tilt`` (amplitude of harmonic ``h`` is
    ``h ** -tilt``); ``chirp`` pitch glide in octaves per second; ``rhythm`` amplitude-modulation
    rate (Hz) and ``duty`` the fraction of each period that sounds; ``noise_band`` centre and
    relative width of a band of noise mixed in with gain ``noise_gain``.
    """

    f0: float
    n_harmonics: int
    tilt: float
    chirp: float
    rhythm: float
    duty: float
    noise_band: tuple[float, float]
    noise_gain: float


def class_signature(k: int, num_classes: int) -> Signature:
    """The sound signature of class ``k`` (a fixed design table, the same in every world).

    Pitches are spread over three octaves (150 Hz to 1.2 kHz, log-spaced), harmonics and tilt
    alternate, glides rise or fall, rhythms go from 2 to 9 Hz, and each class has a noise band
    between 1.5 and 7 kHz: any two classes differ in several cues at once.
    """
    if not 0 <= k < num_classes:
        raise ValueError(f"class index {k} out of range for {num_classes} classes")
    frac = k / max(1, num_classes - 1)
    return Signature(
        f0=150.0 * 2.0 ** (3.0 * frac),
        n_harmonics=(2, 6, 4, 8, 3, 7, 5, 1)[k % 8],
        tilt=(1.5, 0.7, 1.0, 0.5, 1.2, 0.8, 0.6, 1.0)[k % 8],
        chirp=(0.0, 0.8, -0.8, 0.4, -0.4, 1.2, -1.2, 0.0)[k % 8],
        rhythm=2.0 + 7.0 * ((k * 3) % num_classes) / max(1, num_classes - 1),
        duty=(0.6, 0.4, 0.8, 0.5, 0.7, 0.3, 0.9, 0.5)[k % 8],
        noise_band=(1500.0 * 2.0 ** (2.2 * ((k * 5) % num_classes) / max(1, num_classes - 1)), 0.3),
        noise_gain=(0.15, 0.4, 0.25, 0.1, 0.35, 0.2, 0.3, 0.45)[k % 8],
    )


def _band_noise(rng: np.random.Generator, n: int, rate: int, centre: float, rel_width: float) -> np.ndarray:
    """White noise band-passed in the frequency domain around ``centre`` (unit RMS)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    width = max(centre * rel_width, 20.0)
    spec *= np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    out = np.fft.irfft(spec, n)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def render_sound(
    rng: np.random.Generator, signature: Signature, config: WorldConfig
) -> np.ndarray:
    """One jittered clip of a class signature (float32 ``[T]``, peak about ``loudness``)."""
    rate, n = config.sample_rate, config.clip_samples
    t = np.arange(n) / rate
    pitch = signature.f0 * math.exp(rng.normal(0.0, config.pitch_jitter))
    glide = signature.chirp * (1.0 + rng.normal(0.0, 0.1))
    # instantaneous frequency f(t) = pitch * 2 ** (glide * (t - T/2)); phase is its integral
    centred = t - t[-1] / 2 if n > 1 else t
    if abs(glide) > 1e-9:
        k = glide * math.log(2.0)
        phase_base = pitch * (np.exp(k * centred) - math.exp(k * centred[0])) / k
    else:
        phase_base = pitch * (t - t[0])
    tone = np.zeros(n)
    for h in range(1, signature.n_harmonics + 1):
        if pitch * h * 2.0 ** (abs(glide) * t[-1]) >= rate / 2:
            break
        gain = h ** (-signature.tilt) * math.exp(rng.normal(0.0, config.timbre_jitter))
        tone += gain * np.sin(2 * np.pi * h * phase_base + rng.uniform(0, 2 * np.pi))
    tone /= np.max(np.abs(tone)) + 1e-12
    noise = _band_noise(rng, n, rate, signature.noise_band[0] * math.exp(rng.normal(0.0, 0.05)), signature.noise_band[1])
    src = tone + signature.noise_gain * noise * math.exp(rng.normal(0.0, config.timbre_jitter))
    # rhythm: a smoothed on/off gate with a random phase
    rhythm = signature.rhythm * math.exp(rng.normal(0.0, 0.05))
    cycle = (t * rhythm + rng.uniform()) % 1.0
    gate = np.clip((signature.duty - cycle) * 40.0, 0.0, 1.0) * np.clip(cycle * 40.0, 0.0, 1.0)
    src = src * (0.15 + 0.85 * gate)
    src /= np.max(np.abs(src)) + 1e-12
    loud = rng.uniform(*config.loudness)
    return (loud * src).astype(np.float32)


def render_ambient(rng: np.random.Generator, context_class: int, config: WorldConfig) -> np.ndarray:
    """The ambient sound of a context (the band's class): a slowly swelling low noise band."""
    rate, n = config.sample_rate, config.clip_samples
    centre = 120.0 * 2.0 ** (2.5 * context_class / max(1, config.num_classes - 1))
    centre *= math.exp(rng.normal(0.0, config.pitch_jitter))
    noise = _band_noise(rng, n, rate, centre, 0.5)
    t = np.arange(n) / rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * np.pi))
    src = noise * swell
    src /= np.max(np.abs(src)) + 1e-12
    return (rng.uniform(*config.loudness) * src).astype(np.float32)
