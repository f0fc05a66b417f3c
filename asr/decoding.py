"""CTC decoding: logits -> text, with word timings and confidences.

Three decoders, all behind `make_decoder(alphabet, DecodingOptions(...))` and
`Decoder.decode(logits [T, C], frame_seconds)`:

- "greedy": the best path (most probable class per frame, repeats merged, blanks dropped);
- "beam": CTC prefix beam search without a language model;
- "beam_lm": beam search with a word n-gram LM (ARPA), score = log p_ctc + alpha ln p_lm + beta · words.
  `vocabulary: open` (the default) lets any spelling out, adding `unk_offset` nats for each word the LM has
  never seen; `closed` searches a trie of the LM's words, which scores partial words too.

The beam searches run in flashlight-text (C++), in `asr/beam_search.py`, loaded only when asked for. Both may be
biased towards a user's words (`hotwords`, asr/hotwords.py: nats added when the search completes such a word);
the best path has no alternatives to choose from, so greedy decoding refuses them.

Word timings come from a frame alignment: the best path itself for greedy, and for beam outputs the Viterbi
(forced) alignment of the decoded labels to the logits. A word starts at the first frame of its first
character and ends after the last frame of its last character. Its raw confidence is the geometric mean,
over its characters, of each character's peak softmax probability on the frames aligned to it; a model
folder's decoding.yaml may then calibrate it (Platt scaling, `confidence_temperature`/`confidence_bias`,
fitted on dev by `pipelines/calibrate_confidence.py`; see `asr/confidence.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import groupby
from numbers import Integral
from typing import Protocol

import numpy as np

from asr.confidence import platt
from asr.hotwords import HotwordError, Hotwords, hotword_pairs
from asr.text import BLANK_INDEX, Alphabet, ctc_min_frames

DECODERS = ("greedy", "beam", "beam_lm")
DEFAULT_BEAM_WIDTH = 32
DEFAULT_ALPHA = 0.5
DEFAULT_BETA = 1.0
DEFAULT_UNK_OFFSET = 0.0  # any spelling may come out; model folders carry a tuned value
VOCABULARIES = ("open", "closed")  # beam_lm: any spelling, or only the LM's words
# Classes tried per frame, most probable first. The open-vocabulary LM search's cost grows with it (a Python call
# per hypothesis and class; the closed one scores in C++). CTC posteriors are peaky: on the bundled model's dev
# set (244 utterances, width 32, with its LM) 16, 8, 4, 3 and 2 gave 41.1%, 41.1%, 41.4%, 41.6% and 42.2% WER,
# and 4 decodes 3.8x faster than 16 (recipes/default/HISTORY.md, "Token beam"). On the FSDD dev set 8, 16 and all
# 29 gave the same WER; in the closed search at 76 epochs 8 gave 29.79% against 4's 29.73%.
TOKEN_BEAM = 4
WORD_SEPARATOR = " "
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
    vocabulary: str = "open"  # beam_lm: one of VOCABULARIES
    unk_offset: float = DEFAULT_UNK_OFFSET  # beam_lm, open vocabulary: nats added per word the LM has not seen (<= 0)
    # Word confidence calibration (Platt scaling): c -> sigmoid(logit(c) / temperature + bias). The identity
    # by default; a model folder's decoding.yaml carries the values fitted on its dev data.
    confidence_temperature: float = 1.0
    confidence_bias: float = 0.0
    # Beam decoders: (word, nats added when the search completes it), see asr/hotwords.py. Given as a mapping
    # word -> boost or a list of words and (word, boost) pairs, stored normalised as a tuple (hashable, comparable).
    hotwords: Hotwords = ()

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise DecoderError(f"decoder: unknown kind {self.decoder!r}, expected one of {DECODERS}")
        for name in ("beam_width", "token_beam"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise DecoderError(f"{name} must be a positive integer, got {value!r}")
        for name in ("alpha", "beta", "unk_offset", "confidence_temperature", "confidence_bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DecoderError(f"{name} must be a finite number, got {value!r}")
        if self.vocabulary not in VOCABULARIES:
            raise DecoderError(f"vocabulary: unknown kind {self.vocabulary!r}, expected one of {VOCABULARIES}")
        if self.unk_offset > 0:
            raise DecoderError(f"unk_offset must be <= 0 (a penalty for unseen words), got {self.unk_offset!r}")
        if self.confidence_temperature <= 0:
            raise DecoderError(f"confidence_temperature must be positive, got {self.confidence_temperature!r}")
        if self.decoder == "beam_lm" and self.lm_path is None:
            raise DecoderError("lm_path: the beam_lm decoder needs an ARPA language model")
        try:
            object.__setattr__(self, "hotwords", hotword_pairs(self.hotwords))  # frozen: set once, here
        except HotwordError as error:
            raise DecoderError(f"hotwords: {error}") from None
        if self.hotwords and self.decoder == "greedy":  # the best path has no alternatives to choose between
            raise DecoderError("hotwords: the greedy decoder cannot be biased; use the beam or beam_lm decoder")

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
        """Every field, as YAML can write it (hotwords as a mapping word -> boost); `from_dict` reads it back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["hotwords"] = dict(self.hotwords)
        return data

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


def separator_class(alphabet: Alphabet) -> int:
    """The class of the word separator; 0 (the blank, never a character) when the alphabet has none."""
    return alphabet.characters.find(WORD_SEPARATOR) + 1


def words_from_path(path: np.ndarray, probs: np.ndarray, alphabet: Alphabet, frame_seconds: float,
                    calibration: tuple[float, float] = (1.0, 0.0)) -> list[Word]:
    """Words of a frame path [T] (class per frame) with times from its frames; `probs` [T, C] softmax."""
    separator = separator_class(alphabet)
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
    # mean on the bundled model's dev splits (recipes/default/HISTORY.md, "Complete test sets and word confidence").
    peaks = np.array([probs[run, path[run]].max() for run in runs])
    confidence = float(np.clip(np.exp(np.log(np.maximum(peaks, MIN_PROBABILITY)).mean()), 0.0, 1.0))
    words.append(Word("".join(chars), runs[0][0] * frame_seconds, (runs[-1][-1] + 1) * frame_seconds, confidence))
    chars.clear()
    runs.clear()


def transcript_from_path(path: np.ndarray, log_probs: np.ndarray, alphabet: Alphabet, frame_seconds: float,
                         calibration: tuple[float, float] = (1.0, 0.0)) -> Transcript:
    """The transcript a decoder's best frame path spells, with word times and confidences."""
    words = words_from_path(path, np.exp(log_probs), alphabet, frame_seconds, calibration)
    return Transcript(" ".join(w.word for w in words), words)


def checked_logits(logits: np.ndarray, alphabet: Alphabet) -> np.ndarray:
    """`logits` as an array, if it is [frames, classes] for `alphabet` and holds no NaN (else DecoderError)."""
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
        log_probs = log_softmax(checked_logits(logits, self.alphabet))
        path = log_probs.argmax(axis=-1)
        return transcript_from_path(path, log_probs, self.alphabet, frame_seconds, self.calibration)
