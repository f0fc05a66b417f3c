"""CTC decoding: logits -> text, with word timings and confidences.

Three decoders, all behind `make_decoder(alphabet, DecodingOptions(...))` and
`Decoder.decode(logits [T, C], frame_seconds)`:

- "greedy": the best path (most probable class per frame, repeats merged, blanks dropped);
- "beam": CTC prefix beam search without a language model;
- "beam_lm": the same search with a word n-gram LM (ARPA), score = log p_ctc + alpha ln p_lm + beta · words.

Both beam searches run in flashlight-text's `LexiconFreeDecoder` (C++; with `log_add` it sums the paths of a
prefix, separately for prefixes ending in blank and not, as CTC prefix beam search does). One search for both
means "beam_lm" at alpha = beta = 0 is exactly "beam". `keras.ops.ctc_decode(strategy="beam_search")` would
do for "beam" but has no LM hook and costs an eager TensorFlow call per utterance.

flashlight's lexicon-free decoder asks its LM for a score per *character*; `_word_lm` turns that into a word
LM: characters cost nothing, and when a space (or the end of the utterance) closes a word, the word is scored
by KenLM (flashlight's bundled copy) given the previous words. Words need no lexicon (open vocabulary: an
unseen word is scored as <unk>), at the price of no LM guidance inside a word. flashlight's lexicon decoder
would score partial words but can only output words of its lexicon.

Word timings come from a frame alignment: the best path itself for greedy, and for beam outputs the Viterbi
(forced) alignment of the decoded labels to the logits. A word starts at the first frame of its first
character and ends after the last frame of its last character. Its raw confidence is the geometric mean,
over its characters, of each character's peak softmax probability on the frames aligned to it; a model
folder's decoding.yaml may then calibrate it (Platt scaling, `confidence_temperature`/`confidence_bias`,
fitted on dev by `pipelines/calibrate_confidence.py`; see `asr/confidence.py`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import groupby
from numbers import Integral
from pathlib import Path
from typing import Protocol

import numpy as np

from asr.confidence import platt
from asr.text import BLANK_INDEX, Alphabet, ctc_min_frames
from asr.utils import silenced_stderr

DECODERS = ("greedy", "beam", "beam_lm")
DEFAULT_BEAM_WIDTH = 32
DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 1.0
BEAM_THRESHOLD = 50.0  # drop hypotheses this many nats below the best: keeps the beam's work bounded
# Classes tried per frame, most probable first. The LM decoder's cost grows with it (a Python call per hypothesis
# and class). CTC posteriors are peaky: on the bundled model's dev set (244 utterances, width 32, with its LM)
# 16, 8, 4, 3 and 2 gave 41.1%, 41.1%, 41.4%, 41.6% and 42.2% WER, and 4 decodes 3.8x faster than 16
# (BENCHMARKS.md, "Token beam"). On the FSDD dev set 8, 16 and all 29 gave the same WER.
TOKEN_BEAM = 4
WORD_SEPARATOR = " "
LN10 = math.log(10.0)  # ARPA and KenLM work in log10, the acoustic scores in natural log
UNK = "<unk>"
MIN_PROBABILITY = 1e-12  # floor before a log: a character's peak probability can underflow to 0 in float64


class DecoderError(ValueError):
    pass


@dataclass(frozen=True)
class DecodingOptions:
    """How to decode, every default named once. A model folder's decoding.yaml may carry its own (its LM)."""

    decoder: str = "greedy"  # one of DECODERS
    beam_width: int = DEFAULT_BEAM_WIDTH  # beam decoders only
    token_beam: int = TOKEN_BEAM  # beam decoders: the most probable classes tried at each frame
    lm_path: str | None = None  # ARPA word n-gram; beam_lm only
    alpha: float = DEFAULT_ALPHA  # LM weight
    beta: float = DEFAULT_BETA  # word insertion bonus
    # Word confidence calibration (Platt scaling): c -> sigmoid(logit(c) / temperature + bias). The identity
    # by default; a model folder's decoding.yaml carries the values fitted on its dev data.
    confidence_temperature: float = 1.0
    confidence_bias: float = 0.0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise DecoderError(f"decoder: unknown kind {self.decoder!r}, expected one of {DECODERS}")
        for name in ("beam_width", "token_beam"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise DecoderError(f"{name} must be a positive integer, got {value!r}")
        for name in ("alpha", "beta", "confidence_temperature", "confidence_bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DecoderError(f"{name} must be a finite number, got {value!r}")
        if self.confidence_temperature <= 0:
            raise DecoderError(f"confidence_temperature must be positive, got {self.confidence_temperature!r}")
        if self.decoder == "beam_lm" and self.lm_path is None:
            raise DecoderError("lm_path: the beam_lm decoder needs an ARPA language model")

    @classmethod
    def from_dict(cls, data: dict, where: str = "decoding options") -> DecodingOptions:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise DecoderError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})")
        try:
            return cls(**data)
        except DecoderError as error:
            raise DecoderError(f"{where}: {error}") from None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def calibration(self) -> tuple[float, float]:
        """(temperature, bias) of the word confidence calibration."""
        return float(self.confidence_temperature), float(self.confidence_bias)


@dataclass
class Word:
    word: str
    start: float  # seconds from the first frame of the logits
    end: float
    confidence: float  # in [0, 1]


@dataclass
class Transcript:
    text: str
    words: list[Word]


class Decoder(Protocol):
    def decode(self, logits: np.ndarray, frame_seconds: float) -> Transcript:
        """logits [T, C] of one utterance, cut to its true length; frame_seconds: one output frame."""
        ...


# --- best path (the dev WER during training) --------------------------------------------------------------------------


def greedy_ids(logits: np.ndarray, length: int) -> list[int]:
    """Best class per frame, repeats merged, blanks dropped (the standard CTC best-path decode)."""
    best = np.asarray(logits)[:length].argmax(axis=-1)
    if best.size == 0:
        return []
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(i) for i in best[keep] if i != BLANK_INDEX]


def greedy_decode(logits: Sequence[np.ndarray], lengths: Sequence[int], alphabet: Alphabet) -> list[str]:
    """Logits per utterance ([B, T, C], or a list of [T, C]) with true output lengths [B] -> transcripts."""
    return [" ".join(alphabet.decode(greedy_ids(row, int(n))).split()) for row, n in zip(logits, lengths, strict=True)]


# --- alignment and words -----------------------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def forced_align(log_probs: np.ndarray, labels: Sequence[int]) -> np.ndarray | None:
    """Most probable CTC path [T] (class per frame) that collapses to `labels`; None if T is too short.

    Viterbi over the usual extended sequence (blank, l1, blank, l2, ..., blank): state s is reached from s
    (stay), s - 1 (advance), or s - 2 (skip a blank, allowed only between two different labels).
    """
    frames = len(log_probs)
    labels = [int(label) for label in labels]
    if frames < ctc_min_frames(labels) or (frames == 0 and labels):
        return None
    if frames == 0:
        return np.zeros(0, dtype=np.int64)
    extended = np.full(2 * len(labels) + 1, BLANK_INDEX, dtype=np.int64)
    extended[1::2] = labels
    states = len(extended)
    emit = np.asarray(log_probs, dtype=np.float64)[:, extended]
    can_skip = np.zeros(states, dtype=bool)
    can_skip[3::2] = extended[3::2] != extended[1:-2:2]
    score = np.full(states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((frames, states), dtype=np.int8)  # how many states the best predecessor is behind
    for t in range(1, frames):
        candidates = np.full((3, states), -np.inf)
        candidates[0] = score
        candidates[1, 1:] = score[:-1]
        candidates[2, 2:] = np.where(can_skip[2:], score[:-2], -np.inf)
        back[t] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + emit[t]
    state = states - 1 if states == 1 or score[-1] >= score[-2] else states - 2
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = extended[state]
        state -= int(back[t, state])
    return path


def words_from_path(path: np.ndarray, probs: np.ndarray, alphabet: Alphabet, frame_seconds: float,
                    calibration: tuple[float, float] = (1.0, 0.0)) -> list[Word]:
    """Words of a frame path [T] (class per frame) with times from its frames; `probs` [T, C] softmax."""
    separator = alphabet.characters.find(WORD_SEPARATOR) + 1  # 0 (the blank, never a character) if none
    words: list[Word] = []
    chars: list[str] = []
    runs: list[list[int]] = []  # the frames of each character of the word being read
    for label, run in groupby(enumerate(path.tolist()), key=lambda item: item[1]):
        if label == BLANK_INDEX:
            continue
        if label == separator:
            _close_word(words, chars, runs, probs, path, frame_seconds)
            continue
        chars.append(alphabet.characters[label - 1])
        runs.append([t for t, _ in run])
    _close_word(words, chars, runs, probs, path, frame_seconds)
    if calibration != (1.0, 0.0):
        calibrated = platt(np.array([w.confidence for w in words]), *calibration)
        for word, confidence in zip(words, calibrated.tolist(), strict=True):
            word.confidence = confidence
    return words


def _close_word(words: list[Word], chars: list[str], runs: list[list[int]], probs: np.ndarray, path: np.ndarray,
                frame_seconds: float) -> None:
    if not chars:
        return
    # A character's evidence is its peak frame: CTC fires a character on a spike, and a held sound repeats
    # frames, so a plain frame mean weighs long characters more. The geometric mean over characters lets
    # one doubtful character pull its word down; it separated right from wrong words better than the frame
    # mean on the bundled model's dev splits (BENCHMARKS.md, "Complete test sets and word confidence").
    peaks = np.array([probs[run, path[run]].max() for run in runs])
    confidence = float(np.clip(np.exp(np.log(np.maximum(peaks, MIN_PROBABILITY)).mean()), 0.0, 1.0))
    words.append(Word("".join(chars), runs[0][0] * frame_seconds, (runs[-1][-1] + 1) * frame_seconds, confidence))
    chars.clear()
    runs.clear()


def _transcript(path: np.ndarray, log_probs: np.ndarray, alphabet: Alphabet, frame_seconds: float,
                calibration: tuple[float, float] = (1.0, 0.0)) -> Transcript:
    words = words_from_path(path, np.exp(log_probs), alphabet, frame_seconds, calibration)
    return Transcript(" ".join(w.word for w in words), words)


def _check_logits(logits: np.ndarray, alphabet: Alphabet) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != alphabet.num_classes:
        raise DecoderError(f"logits must be [frames, {alphabet.num_classes}] for this alphabet, got {logits.shape}")
    if np.isnan(logits).any():  # a diverged model: no decoder can make sense of it, and the beam would go astray
        raise DecoderError("logits contain NaN")
    return logits


# --- decoders ----------------------------------------------------------------------------------------------


class GreedyDecoder:
    def __init__(self, alphabet: Alphabet, calibration: tuple[float, float] = (1.0, 0.0)):
        self.alphabet, self.calibration = alphabet, calibration

    def decode(self, logits: np.ndarray, frame_seconds: float) -> Transcript:
        log_probs = log_softmax(_check_logits(logits, self.alphabet))
        return _transcript(log_probs.argmax(axis=-1), log_probs, self.alphabet, frame_seconds, self.calibration)


class BeamDecoder:
    """CTC prefix beam search in flashlight-text, optionally with a word LM. Not thread-safe: one per thread."""

    def __init__(self, alphabet: Alphabet, beam_width: int = DEFAULT_BEAM_WIDTH, lm=None,
                 calibration: tuple[float, float] = (1.0, 0.0), token_beam: int = TOKEN_BEAM):
        decoder = _flashlight()
        self.alphabet, self.calibration = alphabet, calibration
        classes = alphabet.num_classes
        options = decoder.LexiconFreeDecoderOptions(
            beam_size=beam_width, beam_size_token=min(token_beam, classes), beam_threshold=BEAM_THRESHOLD,
            lm_weight=1.0,  # _WordLM applies alpha and beta itself
            sil_score=0.0, log_add=True, criterion_type=decoder.CriterionType.CTC)
        self.lm = lm if lm is not None else decoder.ZeroLM()
        separator = alphabet.characters.find(WORD_SEPARATOR) + 1
        self._search = decoder.LexiconFreeDecoder(options, self.lm, separator, BLANK_INDEX, [])

    def decode(self, logits: np.ndarray, frame_seconds: float) -> Transcript:
        log_probs = log_softmax(_check_logits(logits, self.alphabet))
        frames, classes = log_probs.shape
        if frames == 0:
            return Transcript("", [])
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)  # flashlight reads float32 [T, C]
        results = self._search.decode(emissions.ctypes.data, frames, classes)
        best = max(results, key=lambda result: result.score)
        decoder_path = np.asarray(best.tokens[1:frames + 1], dtype=np.int64)  # tokens[0], [-1]: start/end markers
        labels = [label for label, _ in groupby(decoder_path.tolist()) if label != BLANK_INDEX]
        path = forced_align(log_probs, labels)
        if path is None:  # cannot happen for a CTC search's output; the decoder's own path is a valid alignment
            path = decoder_path
        return _transcript(path, log_probs, self.alphabet, frame_seconds, self.calibration)


def _flashlight():
    try:
        from flashlight.lib.text import decoder
    except ImportError:
        raise DecoderError("beam decoders need the flashlight-text package (pip install flashlight-text)") from None
    return decoder


@functools.lru_cache(maxsize=4)
def _load_kenlm(path: str, stamp: tuple[int, int]):
    """(KenLM, word -> index) for an ARPA file, cached on (path, mtime, size): a grid search loads it once."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    from asr.lm import LMError, arpa_vocabulary

    try:
        vocabulary = list(dict.fromkeys([UNK, *arpa_vocabulary(path)]))  # <unk> first: index 0 for unseen words
        with silenced_stderr():
            kenlm = KenLM(path, Dictionary(vocabulary))
    except (LMError, RuntimeError) as error:
        raise DecoderError(f"lm_path: {path}: cannot load the ARPA language model ({error})") from None
    return kenlm, {word: i for i, word in enumerate(vocabulary)}


def _word_lm(alphabet: Alphabet, lm_path: str | Path, alpha: float, beta: float):
    """A flashlight LM scoring whole words with KenLM when a separator or the utterance end closes them."""
    from flashlight.lib.text.decoder import LM, LMState

    lm_path = Path(lm_path)
    if not lm_path.is_file():
        raise DecoderError(f"lm_path: {lm_path}: language model file not found")
    stat = lm_path.stat()
    kenlm, word_index = _load_kenlm(str(lm_path), (stat.st_mtime_ns, stat.st_size))
    separator = alphabet.characters.find(WORD_SEPARATOR) + 1
    weight = alpha * LN10

    class WordLM(LM):
        def __init__(self):
            LM.__init__(self)
            self.kenlm = kenlm  # kept alive with the decoder
            self._states: dict = {}  # LMState (one per prefix) -> (KenLM context, partial word, score of its last step)

        def start(self, start_with_nothing: bool):
            state = LMState()
            self._states = {state: (kenlm.start(start_with_nothing), "", 0.0)}  # a new utterance: forget the last
            return state

        def score(self, state, token: int):
            child = state.child(token)  # one object per prefix, so equal prefixes merge in the search
            if child not in self._states:
                context, partial, _ = self._states[state]
                if token != separator:
                    self._states[child] = (context, partial + alphabet.characters[token - 1], 0.0)
                elif partial:
                    self._states[child] = _closed(context, partial)
                else:  # a space with no word before it (leading or doubled): nothing to score
                    self._states[child] = (context, "", 0.0)
            return child, self._states[child][2]

        def finish(self, state):
            context, partial, _ = self._states[state]
            total = 0.0
            if partial:
                context, _, total = _closed(context, partial)
            _, end = kenlm.finish(context)
            return state, total + weight * end

    def _closed(context, word: str):
        next_context, log10_prob = kenlm.score(context, word_index.get(word, 0))
        return next_context, "", weight * log10_prob + beta

    return WordLM()


def make_decoder(alphabet: Alphabet, options: DecodingOptions | None = None) -> Decoder:
    """The decoder `options` describe (default: greedy), for this alphabet."""
    options = options or DecodingOptions()
    if options.decoder == "greedy":
        return GreedyDecoder(alphabet, options.calibration)
    if options.decoder == "beam":
        return BeamDecoder(alphabet, int(options.beam_width), calibration=options.calibration,
                           token_beam=int(options.token_beam))
    _flashlight()
    lm = _word_lm(alphabet, options.lm_path, float(options.alpha), float(options.beta))
    return BeamDecoder(alphabet, int(options.beam_width), lm, options.calibration, int(options.token_beam))
