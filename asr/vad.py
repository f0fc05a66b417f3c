"""Voice activity detection: which stretches of a recording hold speech, so that silence and noise are never
decoded (issue #13: per-utterance normalisation turns a noise floor into "speech", and the model then
invents words in it).

Frames of 30 ms, one every 10 ms, are judged on the signal band-passed to `BAND_HZ` (DC, rumble and mains
hum with its first harmonics removed). With the default method, "voicing", a frame is speech when

- its band power is above `ABSOLUTE_FLOOR_DB`, which digital silence, dither and a quiet line never reach;
- it is periodic: its normalised correlation with itself one pitch period later (60-400 Hz) is at least
  `PERIODICITY`. Voiced speech scores near 1; white and pink noise stay below 0.45 on 30 ms frames;
- it is not impulsive: its loudest `IMPULSE_SHARE` of samples hold less than `IMPULSIVE` of its energy
  (a pair of clicks one "pitch period" apart is periodic too);
- and, when the window holds `NOISE_CONTEXT_SECONDS` or more, its power is `MARGIN_DB` above the window's
  noise floor (the `NOISE_PERCENTILE`th percentile of its frames). Steady sounds (hum's in-band harmonics,
  tones, noise) stay within a few dB of their own percentile; speech rises 10-40 dB above its pauses. A
  shorter window (a single trimmed word) has no pause to measure a floor in, so only the first two apply.

Method "webrtc" instead asks WebRTC's VAD (`webrtcvad-wheels`, a GMM over sub-band energies) about each
frame's middle 10 ms, with the same absolute floor. It is kept for comparison: it calls loud white and pink
noise and mains hum speech (it adapts to a noise over many seconds, and a short clip is over by then) and
misses quiet speech, see BENCHMARKS.md. Method "off" treats everything as speech.

A region of speech is a run of frames above both floors ("active") holding at least `MIN_SPEECH_SECONDS`
of voiced frames in a row (dips up to `VOICING_GAP_SECONDS` bridged): unvoiced sounds next to a vowel (the
"s" of "six") belong to it, while a click, or a burst of them, has no voiced run and is dropped. Regions
closer than `MIN_PAUSE_SECONDS` are joined (stop closures, breaths between words) and padded by
`PAD_SECONDS` on both sides. `asr.transcribe` decodes only these regions and cuts long files at the pauses
between them. Every setting is a field of `VadOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from asr.audio import resample

METHODS = ("voicing", "webrtc", "off")
DEFAULT_METHOD = "voicing"
FRAME_SECONDS = 0.03  # analysis frame: two periods of a 70 Hz voice
HOP_SECONDS = 0.01  # a decision every 10 ms (webrtcvad judges 10 ms chunks)
BAND_HZ = (250.0, 3800.0)  # speech formants; the upper edge is capped at 0.45 × the sample rate
BAND_ORDER = 4  # Butterworth order of the band-pass
PITCH_HZ = (60.0, 400.0)  # voice pitch range searched for periodicity
PERIODICITY = 0.5
IMPULSE_SHARE = 0.1  # a frame is impulsive when its loudest 10% of samples hold IMPULSIVE of its energy:
IMPULSIVE = 0.8  # two clicks a pitch period apart look periodic, but hold 0.9; voiced speech at most 0.6
ABSOLUTE_FLOOR_DB = -70.0  # band power re full scale; the "s" of a quiet "six" is -65, digital silence SILENCE_DB
NOISE_PERCENTILE = 10.0
MARGIN_DB = 6.0
NOISE_CONTEXT_SECONDS = 0.75
WEBRTC_AGGRESSIVENESS = 3  # 0 (keeps most) .. 3 (drops most)
WEBRTC_RATES = (8000, 16000, 32000, 48000)  # what webrtcvad accepts; other rates are resampled to 16 kHz
WEBRTC_FALLBACK_RATE = 16000
VOICING_GAP_SECONDS = 0.02  # periodicity dips this short inside a vowel (a rough or noisy voice) are bridged
MIN_SPEECH_SECONDS = 0.05  # a click, after the band-pass, lasts less
MIN_PAUSE_SECONDS = 0.3
PAD_SECONDS = 0.1  # the bundled model errs more with more silence around a word (BENCHMARKS.md)
# Audio decoded around each speech region; words are kept only within PAD_SECONDS of speech. How much a model
# wants depends on the silence it was trained with: a model folder sets its own in vad.yaml (AN4's: 0.5 s).
CONTEXT_SECONDS = PAD_SECONDS
SILENCE_DB = -100.0  # the band power given to an all-zero frame (the log of 0 is not a number)


class VadError(ValueError):
    pass


_RANGES = {"periodicity": (0.0, 1.0), "margin_db": (0.0, 60.0), "absolute_floor_db": (SILENCE_DB, 0.0),
           "min_speech_seconds": (0.0, 10.0), "min_pause_seconds": (0.0, 60.0), "pad_seconds": (0.0, 10.0),
           "context_seconds": (0.0, 10.0)}


@dataclass(frozen=True)
class VadOptions:
    """How to find speech; the defaults are the constants above. method "off" treats all audio as speech."""

    method: str = DEFAULT_METHOD  # one of METHODS
    periodicity: float = PERIODICITY  # voicing only
    margin_db: float = MARGIN_DB  # voicing only
    aggressiveness: int = WEBRTC_AGGRESSIVENESS  # webrtc only
    absolute_floor_db: float = ABSOLUTE_FLOOR_DB
    min_speech_seconds: float = MIN_SPEECH_SECONDS
    min_pause_seconds: float = MIN_PAUSE_SECONDS
    pad_seconds: float = PAD_SECONDS  # words are kept within this much of speech
    context_seconds: float = CONTEXT_SECONDS  # audio decoded around each speech region (at least pad_seconds)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise VadError(f"vad: unknown method {self.method!r}, expected one of {', '.join(METHODS)}")
        if isinstance(self.aggressiveness, bool) or self.aggressiveness not in (0, 1, 2, 3):
            raise VadError(f"vad aggressiveness must be 0, 1, 2 or 3, got {self.aggressiveness!r}")
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise VadError(f"vad {name} must be a number from {low:g} to {high:g}, got {value!r}")
        if self.context_seconds < self.pad_seconds:
            raise VadError(f"vad context_seconds ({self.context_seconds}) must be at least pad_seconds "
                           f"({self.pad_seconds}): words are kept only where audio was decoded")
        if self.method == "webrtc":
            _webrtcvad()  # fail before the first file, not inside the batch, when the package is missing

    @property
    def enabled(self) -> bool:
        return self.method != "off"


VAD_OFF = VadOptions(method="off")


# --- frames ------------------------------------------------------------------------------------------------


def frame_length(sample_rate: int) -> int:
    return round(FRAME_SECONDS * sample_rate)


def hop_length(sample_rate: int) -> int:
    return round(HOP_SECONDS * sample_rate)


def frame_count(samples: int, sample_rate: int) -> int:
    """Whole frames in `samples`: frame i covers samples [i * hop, i * hop + frame length)."""
    size = frame_length(sample_rate)
    return 0 if samples < size else 1 + (samples - size) // hop_length(sample_rate)


def _frames(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """[frames, frame length] view of the samples (overlapping: a new frame every hop)."""
    size, count = frame_length(sample_rate), frame_count(len(samples), sample_rate)
    if count == 0:
        return np.zeros((0, size))
    return np.lib.stride_tricks.sliding_window_view(samples, size)[::hop_length(sample_rate)][:count]


@lru_cache(maxsize=8)
def _band_filter(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The band-pass's second-order sections and their step-response initial state (`sosfilt_zi`)."""
    from scipy.signal import butter, sosfilt_zi

    high = min(BAND_HZ[1], 0.45 * sample_rate)
    sections = butter(BAND_ORDER, [BAND_HZ[0], high], btype="bandpass", fs=sample_rate, output="sos")
    return sections, sosfilt_zi(sections)


def band_pass(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Zero-phase Butterworth band-pass to BAND_HZ. (A brick-wall FFT filter would spread every click over
    the whole window with its sinc ringing.)

    This is scipy's `sosfiltfilt` (odd extension of 3 × taps at each end, forward then backward `sosfilt`
    started in the step-response state) written out so that the initial state is computed once per rate:
    `sosfilt_zi` solves a linear system per section on every call and was a third of the VAD's time on
    short files. tests/test_vad.py checks that both give the same samples.
    """
    from scipy.signal import sosfilt

    sections, initial = _band_filter(sample_rate)
    edge = 3 * (2 * len(sections) + 1)
    if len(samples) <= edge:  # too short for the edge extension: no frame anyway
        return np.zeros(len(samples))
    extended = np.concatenate((2 * samples[0] - samples[edge:0:-1], samples,
                               2 * samples[-1] - samples[-2:-edge - 2:-1]))
    forward, _ = sosfilt(sections, extended, zi=initial * extended[0])
    backward, _ = sosfilt(sections, forward[::-1], zi=initial * forward[-1])
    return backward[::-1][edge:-edge]


def frame_features(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(band power in dB re full scale, periodicity, impulsiveness) of each frame, the last two in [0, 1].

    Power: mean square of the band-passed frame; an all-zero frame gets SILENCE_DB. Periodicity: the
    highest normalised correlation between the frame's first and last (length - lag) samples over the
    pitch lags; exact energies of both parts from cumulative sums, the products from one FFT per frame.
    Impulsiveness: the share of the frame's energy in its loudest IMPULSE_SHARE of samples.
    """
    frames = _frames(band_pass(np.asarray(samples, np.float64), sample_rate), sample_rate)
    count, size = frames.shape
    if count == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    squares = frames ** 2
    total = squares.sum(axis=1)
    loudest = max(1, round(IMPULSE_SHARE * size))
    with np.errstate(divide="ignore", invalid="ignore"):
        power_db = np.maximum(10 * np.log10(total / size), SILENCE_DB)
        impulsiveness = np.nan_to_num(-np.partition(-squares, loudest - 1, axis=1)[:, :loudest].sum(axis=1) / total)
    fft_size = 1 << (2 * size - 1).bit_length()  # no circular wrap-around for lags below the frame length
    products = np.fft.irfft(np.abs(np.fft.rfft(frames, fft_size, axis=1)) ** 2, fft_size, axis=1)
    cumulative = np.cumsum(squares, axis=1)
    lags = np.arange(max(1, int(sample_rate / PITCH_HZ[1])), min(size - 1, int(sample_rate / PITCH_HZ[0])) + 1)
    head = cumulative[:, size - 1 - lags]  # energy of x[0 : size - lag]
    tail = cumulative[:, -1:] - cumulative[:, lags - 1]  # energy of x[lag : size]
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.nan_to_num(products[:, lags] / np.sqrt(head * tail), nan=0.0, posinf=0.0, neginf=0.0)
    return power_db, np.clip(correlation.max(axis=1), 0.0, 1.0), impulsiveness


def webrtc_frames(samples: np.ndarray, sample_rate: int, aggressiveness: int) -> np.ndarray:
    """webrtcvad's decision for the middle 10 ms of each frame (a fresh detector per call, so no state carries
    over from one window or file to the next)."""
    count = frame_count(len(samples), sample_rate)
    rate = sample_rate if sample_rate in WEBRTC_RATES else WEBRTC_FALLBACK_RATE
    if rate != sample_rate:
        samples = resample(np.asarray(samples, np.float32), sample_rate, rate)
    chunk = round(HOP_SECONDS * rate)
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    vad = _webrtcvad().Vad(aggressiveness)
    chunks = [vad.is_speech(pcm[i * chunk:(i + 1) * chunk].tobytes(), rate) for i in range(len(pcm) // chunk)]
    middle = round((FRAME_SECONDS - HOP_SECONDS) / 2 / HOP_SECONDS)  # frame i's middle is chunk i + middle
    decisions = np.zeros(count, dtype=bool)
    usable = max(0, min(count, len(chunks) - middle))
    decisions[:usable] = chunks[middle:middle + usable]
    return decisions


def speech_frames(samples: np.ndarray, sample_rate: int, options: VadOptions) -> tuple[np.ndarray, np.ndarray]:
    """(core, active) per frame, before smoothing: core frames are surely speech (voiced, above both floors),
    active ones loud enough to be (above both floors). A region is a run of active frames around a core run,
    so that unvoiced sounds next to a vowel ("s" of "six") are kept and the silence around words is not."""
    if not options.enabled:
        every = np.ones(frame_count(len(samples), sample_rate), dtype=bool)
        return every, every
    power, periodicity, impulsiveness = frame_features(samples, sample_rate)
    active = power >= options.absolute_floor_db
    if not active.any():
        return active, active
    if options.method == "webrtc":
        core = active & webrtc_frames(samples, sample_rate, options.aggressiveness)
        return core, core
    if len(power) * HOP_SECONDS >= NOISE_CONTEXT_SECONDS:
        active &= power >= np.percentile(power, NOISE_PERCENTILE) + options.margin_db
    return active & (periodicity >= options.periodicity) & (impulsiveness < IMPULSIVE), active


# --- regions -----------------------------------------------------------------------------------------------


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges of the True runs of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def smooth(core: np.ndarray, active: np.ndarray, options: VadOptions) -> list[tuple[int, int]]:
    """Frame runs of speech: the runs of active frames that hold min_speech of core frames in a row (gaps of
    up to VOICING_GAP_SECONDS bridged; one click, or a burst of them, has none), joined where they are less
    than min_pause apart."""
    min_pause = round(options.min_pause_seconds / HOP_SECONDS)
    min_speech = max(1, round(options.min_speech_seconds / HOP_SECONDS))
    gap = round(VOICING_GAP_SECONDS / HOP_SECONDS)
    bridged = np.asarray(core, bool).copy()
    for start, end in runs(~bridged):
        if start > 0 and end < len(bridged) and end - start <= gap:
            bridged[start:end] = True
    kept: list[tuple[int, int]] = []
    for start, end in runs(active):
        if max((b - a for a, b in runs(bridged[start:end])), default=0) < min_speech:
            continue
        if kept and start - kept[-1][1] < min_pause:
            kept[-1] = (kept[-1][0], end)
        else:
            kept.append((start, end))
    return kept


@dataclass
class SpeechMap:
    """Where speech is in one stretch of `length` samples: `spans`, sample ranges of (smoothed) speech."""

    length: int
    spans: list[tuple[int, int]]

    def regions(self, pad: int) -> list[tuple[int, int]]:
        """The spans padded by `pad` samples each side, clipped to the stretch, merged where they meet."""
        merged: list[tuple[int, int]] = []
        for start, end in self.spans:
            low, high = max(0, start - pad), min(self.length, end + pad)
            if merged and low <= merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def pauses(self) -> list[tuple[int, int]]:
        """Sample ranges without speech, the leading and trailing ones included."""
        bounds = [0, *[edge for span in self.spans for edge in span], self.length]
        return [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=True) if b > a]


def detect(samples: np.ndarray, sample_rate: int, options: VadOptions) -> SpeechMap:
    """The speech in `samples`. Frame i stands for its middle hop; a run reaching the last frame reaches the
    end of the samples (the partial frame after it cannot be judged, and cutting a word there would be worse)."""
    length = len(samples)
    if not options.enabled:
        return SpeechMap(length, [(0, length)] if length else [])
    hop, size = hop_length(sample_rate), frame_length(sample_rate)
    core, active = speech_frames(samples, sample_rate, options)
    offset = (size - hop) // 2
    spans = [(a * hop + offset if a else 0, length if b == len(core) else b * hop + offset)
             for a, b in smooth(core, active, options)]
    return SpeechMap(length, spans)


@lru_cache(maxsize=1)
def _webrtcvad():
    try:
        import webrtcvad
    except ImportError:
        raise VadError("--vad webrtc needs the webrtcvad-wheels package (pip install webrtcvad-wheels); "
                       "the default --vad voicing does not") from None
    return webrtcvad
