"""The beam decoders ("beam", "beam_lm"), in flashlight-text's C++ searches; `asr.decoders.make_decoder` builds them.

Open vocabulary (the default, and "beam"): flashlight's `LexiconFreeDecoder`, CTC prefix beam search (with
`log_add` it sums the paths of a prefix, separately for prefixes ending in blank and not). One search for
"beam" and "beam_lm" means "beam_lm" at alpha = beta = 0 is exactly "beam". `keras.ops.ctc_decode(
strategy="beam_search")` would do for "beam" but has no LM hook and costs an eager TensorFlow call per
utterance. The lexicon-free search asks its LM for a score per *character*; `_word_lm` turns that into a word
LM: characters cost nothing, and when a space (or the end of the utterance) closes a word, the word is scored
by KenLM (flashlight's bundled copy) given the previous words. Any word can come out (an unseen one is scored
as <unk>, plus `unk_offset` nats, as pyctcdecode's `unk_score_offset`), at the price of no LM guidance inside
a word.

Closed vocabulary (`vocabulary: closed`): flashlight's `LexiconDecoder` walks a trie of the LM's words, so
only those words come out, and a partial word already carries the LM score of its best completion (the trie
is smeared with the highest unigram score below each node). Each word is spelled with a trailing space, so the
model must fire a space (or reach the end of the utterance, appended as one frame where the space is certain)
before a word counts: without it the search splits words into short ones the acoustics never separated. On
the bundled model's dev set this search beat the open one by about 3 points WER (recipes/default/HISTORY.md,
"Closed vocabulary"), while a large `unk_offset` in the open search made it worse: the in-vocabulary spelling had
already left the beam by the time the word closed.
"""

from __future__ import annotations

import functools
import math
from itertools import groupby
from pathlib import Path

import numpy as np

from asr.decoding import (
    TOKEN_BEAM,
    WORD_SEPARATOR,
    DecoderError,
    DecodingOptions,
    Transcript,
    checked_logits,
    forced_align,
    log_softmax,
    separator_class,
    transcript_from_path,
)
from asr.lm import LMError, arpa_vocabulary
from asr.text import BLANK_INDEX, Alphabet
from asr.utils import silenced_stderr

BEAM_THRESHOLD = 50.0  # drop hypotheses this many nats below the best: keeps the beam's work bounded
LN10 = math.log(10.0)  # ARPA and KenLM work in log10, the acoustic scores in natural log
UNK = "<unk>"
NOT_A_WORD = ("<s>", "</s>", UNK)  # in an ARPA vocabulary, but never spoken
IMPOSSIBLE = -1e4  # log probability of the classes other than the space on the appended closing frame


def _flashlight():
    try:
        from flashlight.lib.text import decoder
    except ImportError:
        raise DecoderError("beam decoders need the flashlight-text package (pip install flashlight-text)") from None
    return decoder


class BeamDecoder:
    """CTC prefix beam search in flashlight-text, optionally with a word LM. Not thread-safe: one per thread."""

    def __init__(self, alphabet: Alphabet, beam_width: int, lm=None, calibration: tuple[float, float] = (1.0, 0.0),
                 token_beam: int = TOKEN_BEAM):
        decoder = _flashlight()
        self.alphabet, self.calibration = alphabet, calibration
        options = decoder.LexiconFreeDecoderOptions(
            beam_size=beam_width, beam_size_token=min(token_beam, alphabet.num_classes),
            beam_threshold=BEAM_THRESHOLD, lm_weight=1.0,  # _word_lm applies alpha and beta itself
            sil_score=0.0, log_add=True, criterion_type=decoder.CriterionType.CTC)
        self.lm = lm if lm is not None else decoder.ZeroLM()
        self._search = decoder.LexiconFreeDecoder(options, self.lm, separator_class(alphabet), BLANK_INDEX, [])

    def decode(self, logits: np.ndarray, frame_seconds: float) -> Transcript:
        log_probs = log_softmax(checked_logits(logits, self.alphabet))
        frames = len(log_probs)
        if frames == 0:
            return Transcript("", [])
        best = self._best(log_probs)
        decoder_path = np.asarray(best.tokens[1:frames + 1], dtype=np.int64)  # tokens[0], [-1]: start/end markers
        path = forced_align(log_probs, self._labels(best, decoder_path))
        if path is None:  # cannot happen for a CTC search's output; the decoder's own path is a valid alignment
            path = decoder_path
        return transcript_from_path(path, log_probs, self.alphabet, frame_seconds, self.calibration)

    def _best(self, log_probs: np.ndarray):
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)  # flashlight reads float32 [T, C]
        results = self._search.decode(emissions.ctypes.data, *emissions.shape)
        return max(results, key=lambda result: result.score)

    def _labels(self, best, decoder_path: np.ndarray) -> list[int]:
        return [label for label, _ in groupby(decoder_path.tolist()) if label != BLANK_INDEX]


class LexiconBeamDecoder(BeamDecoder):
    """The LM's words only: flashlight's lexicon search over a trie of them (see the module docstring)."""

    def __init__(self, alphabet: Alphabet, options: DecodingOptions):
        decoder = _flashlight()
        self.alphabet, self.calibration = alphabet, options.calibration
        self.separator = separator_class(alphabet)
        if self.separator == 0:
            raise DecoderError("vocabulary: closed needs an alphabet with a space to end words")
        self.kenlm, self.words, trie = _lexicon(*_lm_key(options.lm_path), alphabet.characters)
        search_options = decoder.LexiconDecoderOptions(
            beam_size=int(options.beam_width), beam_size_token=min(int(options.token_beam), alphabet.num_classes),
            beam_threshold=BEAM_THRESHOLD, lm_weight=float(options.alpha) * LN10, word_score=float(options.beta),
            unk_score=-math.inf, sil_score=0.0, log_add=True, criterion_type=decoder.CriterionType.CTC)
        self._search = decoder.LexiconDecoder(search_options, trie, self.kenlm, self.separator, BLANK_INDEX,
                                              self.words.index(UNK), [], False)

    def _best(self, log_probs: np.ndarray):
        closing = np.full((1, log_probs.shape[1]), IMPOSSIBLE)  # the utterance end closes its last word
        closing[0, self.separator] = 0.0
        return super()._best(np.concatenate([log_probs, closing]))

    def _labels(self, best, decoder_path: np.ndarray) -> list[int]:
        text = WORD_SEPARATOR.join(self.words[index] for index in best.words if index >= 0)
        return self.alphabet.encode(text)


def _lm_key(lm_path: str | Path | None) -> tuple[str, tuple[int, int]]:
    """(path, (mtime, size)) of an existing LM file: the cache key, so an edited file is reloaded."""
    path = Path(lm_path) if lm_path is not None else None
    if path is None or not path.is_file():
        raise DecoderError(f"lm_path: {lm_path}: language model file not found")
    stat = path.stat()
    return str(path), (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_kenlm(path: str, stamp: tuple[int, int]):
    """(KenLM, its vocabulary by index) for an ARPA file, cached on (path, mtime, size): a grid search loads it
    once."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary


    try:
        vocabulary = list(dict.fromkeys([UNK, *arpa_vocabulary(path)]))  # <unk> first: index 0 for unseen words
        with silenced_stderr():
            kenlm = KenLM(path, Dictionary(vocabulary))
    except (LMError, RuntimeError) as error:
        raise DecoderError(f"lm_path: {path}: cannot load the ARPA language model ({error})") from None
    return kenlm, vocabulary


@functools.lru_cache(maxsize=4)
def _lexicon(path: str, stamp: tuple[int, int], characters: str):
    """(KenLM, vocabulary, trie of the spellable words, each followed by a space), cached like `_load_kenlm`."""
    decoder = _flashlight()
    alphabet = Alphabet(characters)
    kenlm, vocabulary = _load_kenlm(path, stamp)
    trie = decoder.Trie(alphabet.num_classes, separator_class(alphabet))
    start = kenlm.start(False)
    for index, word in enumerate(vocabulary):
        if word in NOT_A_WORD or alphabet.unknown_characters(word) or WORD_SEPARATOR in word:
            continue
        _, unigram = kenlm.score(start, index)
        trie.insert(alphabet.encode(word + WORD_SEPARATOR), index, unigram)
    trie.smear(decoder.SmearingMode.MAX)
    return kenlm, vocabulary, trie


def _word_lm(alphabet: Alphabet, lm_path: str | Path | None, alpha: float, beta: float, unk_offset: float = 0.0):
    """A flashlight LM scoring whole words with KenLM when a separator or the utterance end closes them."""
    from flashlight.lib.text.decoder import LM, LMState

    kenlm, vocabulary = _load_kenlm(*_lm_key(lm_path))
    word_index = {word: i for i, word in enumerate(vocabulary)}
    separator = separator_class(alphabet)
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
        index = word_index.get(word)
        next_context, log10_prob = kenlm.score(context, 0 if index is None else index)
        return next_context, "", weight * log10_prob + beta + (unk_offset if index is None else 0.0)

    return WordLM()


def make_beam_decoder(alphabet: Alphabet, options: DecodingOptions) -> BeamDecoder:
    """The "beam" or "beam_lm" decoder `options` describe."""
    if options.decoder == "beam":
        return BeamDecoder(alphabet, int(options.beam_width), calibration=options.calibration,
                           token_beam=int(options.token_beam))
    _flashlight()
    if options.vocabulary == "closed":
        return LexiconBeamDecoder(alphabet, options)
    lm = _word_lm(alphabet, options.lm_path, float(options.alpha), float(options.beta), float(options.unk_offset))
    return BeamDecoder(alphabet, int(options.beam_width), lm, options.calibration, int(options.token_beam))
