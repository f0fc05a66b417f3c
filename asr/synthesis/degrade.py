"""Clean synthetic speech made to sound like 8 kHz telephone audio, and telephone copies of real recordings.

`degrade` gives a recording edge silence, coloured noise at a random SNR, maybe the 300-3400 Hz telephone
band-pass, then a random gain, all drawn from the Generator it is given: seeded by (seed, index), a re-run
writes the same bytes. The espeak-ng corpus (`asr.synthesis.espeak`), the other engines
(`asr.synthesis.engines`) and the non-speech clips (pipelines/make_nonspeech.py) share it.

`telephone` is what a phone line does to wideband audio (pipelines/telephone_copy.py): the same band-pass
at 8 kHz, then G.711 mu-law coding and decoding, so one model can be scored on a recording and on its
telephone copy.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from asr.utils import atomic_write

EDGE_SILENCE_S = (0.05, 0.4)  # leading and trailing silence (then filled with noise), each side
TRIM_LEVEL = 0.01  # espeak's own edge silence is cut where |x| first/last exceeds this fraction of the peak
SNR_DB = (10.0, 40.0)
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent
TELEPHONE_BAND_HZ = (300.0, 3400.0)
TELEPHONE_PROBABILITY = 0.6
FILTER_ORDER = 6  # per band edge; channel filters are steep, and at 8 kHz 3400 Hz sits close to Nyquist
PEAK_DBFS = (-18.0, 1.0)  # random gain as a peak level; above 0 dBFS a few utterances clip, as phones do
TELEPHONE_RATE = 8000  # a telephone copy's sample rate
MU = 255  # G.711 mu-law


def trim_silence(samples: np.ndarray, level: float = TRIM_LEVEL) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > level * np.abs(samples).max())
    return samples[loud[0]:loud[-1] + 1] if loud.size else samples


def coloured_noise(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Unit-RMS Gaussian noise whose power spectrum falls as 1 / f**exponent (0 white, 1 pink, 2 brown)."""
    noise = rng.standard_normal(size)
    if exponent:
        spectrum = np.fft.rfft(noise)
        bins = np.arange(spectrum.size, dtype=np.float64)
        bins[0] = 1.0  # leave DC alone rather than divide by zero
        noise = np.fft.irfft(spectrum / bins ** (exponent / 2), size)
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


@lru_cache(maxsize=4)
def _telephone_sos(sample_rate: int) -> np.ndarray:
    low, high = TELEPHONE_BAND_HZ
    if high < 0.95 * sample_rate / 2:
        return butter(FILTER_ORDER, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    return butter(FILTER_ORDER, low, btype="highpass", fs=sample_rate, output="sos")  # Nyquist already limits it


def telephone_filter(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """300-3400 Hz Butterworth band-pass, the passband of a classic analogue/G.711 telephone channel."""
    return sosfilt(_telephone_sos(sample_rate), samples).astype(samples.dtype)


def degrade(speech: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Edge silence, noise at a random SNR, maybe the telephone band, then a random gain; float32 in [-1, 1]."""
    speech = trim_silence(speech.astype(np.float64))
    speech /= max(float(np.abs(speech).max()), 1e-9)
    lead, tail = (int(s * sample_rate) for s in rng.uniform(*EDGE_SILENCE_S, size=2))
    signal = np.concatenate([np.zeros(lead), speech, np.zeros(tail)])
    colour = list(NOISE_EXPONENTS)[rng.integers(len(NOISE_EXPONENTS))]
    snr_db = rng.uniform(*SNR_DB)
    speech_rms = float(np.sqrt(np.mean(speech ** 2)))
    signal += coloured_noise(rng, signal.size, NOISE_EXPONENTS[colour]) * speech_rms / 10 ** (snr_db / 20)
    if rng.random() < TELEPHONE_PROBABILITY:
        signal = telephone_filter(signal, sample_rate)
    peak = 10 ** (rng.uniform(*PEAK_DBFS) / 20)
    signal *= peak / max(float(np.abs(signal).max()), 1e-9)
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def mu_law(samples: np.ndarray) -> np.ndarray:
    """Encode to 8-bit mu-law codes (sign + 7-bit magnitude, so +0 and -0) and decode: the codec's quantisation."""
    magnitude = np.round(np.log1p(MU * np.abs(samples)) / np.log1p(MU) * 127) / 127
    return (np.sign(samples) * np.expm1(magnitude * np.log1p(MU)) / MU).astype(np.float32)


def telephone(samples: np.ndarray) -> np.ndarray:
    """8 kHz `samples` as a phone line delivers them: band-passed, clipped to [-1, 1] and mu-law coded."""
    return mu_law(np.clip(telephone_filter(samples.astype(np.float64), TELEPHONE_RATE), -1.0, 1.0))


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM, written through a temporary file and a rename: an interrupted run never leaves half a file."""
    with atomic_write(path, "wb") as handle:
        sf.write(handle, samples, sample_rate, format="WAV", subtype="PCM_16")
