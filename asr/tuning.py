"""Decoder tuning: grid-search the beam_lm decoder's vocabulary, LM weight, word bonus, unseen-word offset and beams.

Each setting transcribes a dev manifest's files as `asr transcribe` does (20 s windows, the model folder's
voice activity detector and vad.yaml), so the chosen setting is tuned for the path it will serve; the model
runs once per distinct speech segment (`CachedLogits`) and every setting decodes the same logits. WER
(references normalised as training targets are) is measured for greedy, for beam search without the LM at
each width, and for each (beam width, token beam, vocabulary, alpha, beta, unk offset: open vocabulary only).
`pipelines/tune_decoder.py` is the command line; recipes call it after training.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data import ManifestError, read_manifest
from asr.decoders import make_decoder
from asr.decoding import DEFAULT_UNK_OFFSET, TOKEN_BEAM, DecodingOptions
from asr.recognizer import load_model
from asr.scoring import error_rate
from asr.text import Alphabet, normalize_text
from asr.transcribe import transcribe

DEFAULT_ALPHAS = (0.0, 0.5, 1.0)
DEFAULT_BETAS = (0.0, 1.0, 2.0)
DEFAULT_BEAM_WIDTHS = (32,)
DEFAULT_TOKEN_BEAMS = (TOKEN_BEAM,)
DEFAULT_UNK_OFFSETS = (DEFAULT_UNK_OFFSET,)
DEFAULT_VOCABULARIES = ("open",)

Transcriber = Callable[[object], list[str]]  # a decoder -> one hypothesis text per manifest row, in order


@dataclass
class Setting:
    decoder: str
    beam_width: int | None
    alpha: float | None
    beta: float | None
    wer: float
    seconds: float  # decoding time over the whole set
    token_beam: int | None = None  # beam_lm: the most probable classes tried at each frame
    unk_offset: float | None = None  # beam_lm: nats added for each word outside the LM's vocabulary
    vocabulary: str | None = None  # beam_lm: open (any spelling) or closed (the LM's words)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, words=True)


def evaluate(transcriber: Transcriber, decoder, references: Sequence[str]) -> tuple[float, float]:
    start = time.perf_counter()
    hypotheses = transcriber(decoder)
    return word_error_rate(references, hypotheses), time.perf_counter() - start


def tune(transcriber: Transcriber, references: Sequence[str], alphabet: Alphabet, lm_path: str | Path,
         alphas: Sequence[float] = DEFAULT_ALPHAS, betas: Sequence[float] = DEFAULT_BETAS,
         beam_widths: Sequence[int] = DEFAULT_BEAM_WIDTHS,
         token_beams: Sequence[int] = DEFAULT_TOKEN_BEAMS,
         unk_offsets: Sequence[float] = DEFAULT_UNK_OFFSETS,
         vocabularies: Sequence[str] = DEFAULT_VOCABULARIES) -> list[Setting]:
    """WER of greedy, of beam per width, and of beam_lm per (width, token beam, vocabulary, alpha, beta, unk
    offset); a closed vocabulary has no unseen words, so it is tried once per (alpha, beta), with offset 0."""
    references = [normalize_text(r) for r in references]
    results = [Setting("greedy", None, None, None, *evaluate(transcriber, make_decoder(alphabet), references))]
    for width in beam_widths:
        decoder = make_decoder(alphabet, DecodingOptions("beam", beam_width=width))
        results.append(Setting("beam", width, None, None, *evaluate(transcriber, decoder, references)))
    grid = dict.fromkeys((width, token_beam, vocabulary, alpha, beta, unk_offset if vocabulary == "open" else 0.0)
                         for width, token_beam, vocabulary, alpha, beta, unk_offset
                         in itertools.product(beam_widths, token_beams, vocabularies, alphas, betas, unk_offsets))
    for width, token_beam, vocabulary, alpha, beta, unk_offset in grid:  # in order, each setting once
        options = DecodingOptions("beam_lm", beam_width=width, token_beam=token_beam, lm_path=str(lm_path),
                                  alpha=alpha, beta=beta, unk_offset=unk_offset, vocabulary=vocabulary)
        decoder = make_decoder(alphabet, options)
        results.append(Setting("beam_lm", width, alpha, beta, *evaluate(transcriber, decoder, references),
                               token_beam=token_beam, unk_offset=unk_offset, vocabulary=vocabulary))
    return results


def logits_transcriber(logits: Sequence[np.ndarray], frame_seconds: float) -> Transcriber:
    """Decode precomputed per-utterance logits (whole utterances)."""
    return lambda decoder: [decoder.decode(row, frame_seconds).text for row in logits]


class CachedLogits:
    """A `Recognizer` whose logits are computed once per distinct speech segment, so that many decoder
    settings can each transcribe the same files as `asr transcribe` does for the cost of one model run."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[bytes, np.ndarray] = {}
        self.model_calls = 0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def logits(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        keys = [hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in waveforms]
        missing = {key: w for key, w in zip(keys, waveforms, strict=True) if key not in self.cache}
        if missing:
            self.model_calls += 1
            self.cache.update(zip(missing, self.model.logits(list(missing.values())), strict=True))
        return [self.cache[key] for key in keys]


def model_transcriber(cached: CachedLogits, paths: Sequence[str]) -> Transcriber:
    """Transcribe the files as `asr transcribe` does (windows, the model's VAD); a file that fails is an error."""
    def transcribe_all(decoder) -> list[str]:
        results = {r.path: r for r in transcribe(list(paths), cached, decoder, progress=False)}
        failed = [r for r in results.values() if r.error]
        if failed:
            raise ManifestError(f"{len(failed)} file(s) could not be transcribed, e.g. {failed[0].error}")
        return [results[path].text for path in paths]

    return transcribe_all


def best_setting(results: Sequence[Setting]) -> Setting:
    """Lowest WER among the beam_lm settings; ties go to the smaller beams (faster), then to the milder
    unseen-word offset (closer to an open vocabulary), then the earlier row."""
    candidates = [r for r in results if r.decoder == "beam_lm"] or list(results)
    return min(candidates, key=lambda r: (r.wer, r.beam_width or 0, r.token_beam or 0, -(r.unk_offset or 0.0)))


def load_transcriber(model_path: Path, manifest: Path) -> tuple[Transcriber, list[str], Alphabet, float]:
    """The manifest's files through the model as `asr transcribe` runs them (the model runs here, so that
    settings are timed on decoding alone), reference texts, alphabet, seconds of audio."""
    rows = read_manifest(manifest)
    missing = [i for i, row in enumerate(rows, 1) if not row.audio_filepath]
    if missing:
        raise ManifestError(f"{manifest}: rows {missing[:5]} have no audio_filepath")
    model = load_model(model_path)
    transcriber = model_transcriber(CachedLogits(model), [row.audio_filepath for row in rows])
    transcriber(make_decoder(model.config.alphabet()))
    return transcriber, [row.text for row in rows], model.config.alphabet(), sum(row.duration for row in rows)


def decoding_options(setting: Setting, lm_path: str | Path) -> DecodingOptions:
    """The beam_lm options of a tuned setting, as a model folder's decoding.yaml stores them."""
    return DecodingOptions("beam_lm", beam_width=setting.beam_width, token_beam=setting.token_beam,
                           lm_path=str(lm_path), alpha=setting.alpha, beta=setting.beta,
                           unk_offset=setting.unk_offset, vocabulary=setting.vocabulary)
