"""The beam decoders ("beam", "beam_lm"), in flashlight-text's C++ searches; `asr.decoders.make_decoder` builds them.

Open vocabulary (the default, and "beam"): flashlight's `LexiconFreeDecoder`, CTC prefix beam search (with
`log_add` it sums the paths of a prefix, separately for prefixes ending in blank and not). One search for
"beam" and "beam_lm" means "beam_lm" at alpha = beta = 0 is exactly "beam". `keras.ops.ctc_decode(
strategy="beam_search")` would do for "beam" but has no LM hook and costs an eager TensorFlow call per
utterance. The lexicon-free search asks its LM for a score per *character*; `asr.word_lm.word_lm` turns that into a word
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

Hotwords (`DecodingOptions.hotwords`, asr/hotwords.py) add their boost, in nats, to a word's score where the search
completes it: in the open search when a space closes it (`word_lm`, which for "beam" scores the boosts alone); in
the closed one, a hotword the LM lacks joins the trie, and the LM becomes `asr.word_lm.boosted_kenlm`, because
flashlight replaces a word's smeared trie score by its LM score when the word completes (so a boost in the trie
alone would vanish there). The trie carries no boost: its look-ahead only orders the beam, and a boost smeared up
to a hotword's first letters lifted every word beginning with them, changing outputs that hold no hotword.
Without hotwords the closed search keeps calling flashlight's C++ KenLM.
"""

from __future__ import annotations

import functools
import math
from itertools import groupby
from typing import NamedTuple

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
from asr.hotwords import HotwordError, check_alphabet
from asr.text import BLANK_INDEX, Alphabet
from asr.word_lm import LN10, UNK, UNK_INDEX, boosted_kenlm, flashlight, lm_key, load_kenlm, word_lm

BEAM_THRESHOLD = 50.0  # drop hypotheses this many nats below the best: keeps the beam's work bounded
NOT_A_WORD = ("<s>", "</s>", UNK)  # in an ARPA vocabulary, but never spoken
IMPOSSIBLE = -1e4  # log probability of the classes other than the space on the appended closing frame


class BeamDecoder:
    """CTC prefix beam search in flashlight-text, optionally with a word LM. Not thread-safe: one per thread."""

    def __init__(self, alphabet: Alphabet, beam_width: int, lm=None, calibration: tuple[float, float] = (1.0, 0.0),
                 token_beam: int = TOKEN_BEAM):
        decoder = flashlight()
        self.alphabet, self.calibration = alphabet, calibration
        options = decoder.LexiconFreeDecoderOptions(
            beam_size=beam_width, beam_size_token=min(token_beam, alphabet.num_classes),
            beam_threshold=BEAM_THRESHOLD, lm_weight=1.0,  # word_lm applies alpha and beta itself
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
        decoder = flashlight()
        self.alphabet, self.calibration = alphabet, options.calibration
        self.separator = separator_class(alphabet)
        if self.separator == 0:
            raise DecoderError("vocabulary: closed needs an alphabet with a space to end words")
        path, stamp = lm_key(options.lm_path)
        weight = float(options.alpha) * LN10
        if options.hotwords:  # boosts in nats, whatever alpha is: alpha folded into the LM's scores, lm_weight 1
            lexicon = _lexicon(path, stamp, alphabet.characters, tuple(word for word, _ in options.hotwords), weight)
            boosts = {lexicon.index[word]: boost for word, boost in options.hotwords}
            lm, lm_weight = boosted_kenlm(lexicon.kenlm, weight, boosts, lexicon.kenlm_size), 1.0
        else:  # flashlight's C++ KenLM, no Python call per word
            lexicon = _lexicon(path, stamp, alphabet.characters)
            lm, lm_weight = lexicon.kenlm, weight
        self.lm, self.words = lm, lexicon.words  # the LM kept alive with the decoder
        search_options = decoder.LexiconDecoderOptions(
            beam_size=int(options.beam_width), beam_size_token=min(int(options.token_beam), alphabet.num_classes),
            beam_threshold=BEAM_THRESHOLD, lm_weight=lm_weight, word_score=float(options.beta),
            unk_score=-math.inf, sil_score=0.0, log_add=True, criterion_type=decoder.CriterionType.CTC)
        self._search = decoder.LexiconDecoder(search_options, lexicon.trie, lm, self.separator, BLANK_INDEX,
                                              lexicon.index[UNK], [], False)

    def _best(self, log_probs: np.ndarray):
        closing = np.full((1, log_probs.shape[1]), IMPOSSIBLE)  # the utterance end closes its last word
        closing[0, self.separator] = 0.0
        return super()._best(np.concatenate([log_probs, closing]))

    def _labels(self, best, decoder_path: np.ndarray) -> list[int]:
        text = WORD_SEPARATOR.join(self.words[index] for index in best.words if index >= 0)
        return self.alphabet.encode(text)


class Lexicon(NamedTuple):
    kenlm: object  # flashlight's KenLM
    words: list[str]  # by index: KenLM's vocabulary, then the hotwords it lacks (scored as <unk>)
    index: dict[str, int]  # the inverse of `words`
    trie: object  # of the spellable words, each followed by a space
    kenlm_size: int  # KenLM's own words: the indices below it


@functools.lru_cache(maxsize=4)
def _lexicon(path: str, stamp: tuple[int, int], characters: str, extra_words: tuple[str, ...] = (),
             weight: float = 1.0) -> Lexicon:
    """The trie of the LM's words and `extra_words` (hotwords), each scored `weight` · log10 p(word); cached like
    `load_kenlm` (and on the words and weight)."""
    decoder = flashlight()
    alphabet = Alphabet(characters)
    kenlm, vocabulary = load_kenlm(path, stamp)
    known = set(vocabulary)
    words = [*vocabulary, *(word for word in extra_words if word not in known)]
    trie = decoder.Trie(alphabet.num_classes, separator_class(alphabet))
    start = kenlm.start(False)
    for index, word in enumerate(words):
        if word in NOT_A_WORD or alphabet.unknown_characters(word) or WORD_SEPARATOR in word:
            continue
        _, unigram = kenlm.score(start, index if index < len(vocabulary) else UNK_INDEX)
        # No boost in the trie: it only orders the beam, and smeared up to a hotword's first letters it lifted every
        # word beginning with them (README, "Hotwords": it changed most outputs of a set without hotwords).
        trie.insert(alphabet.encode(word + WORD_SEPARATOR), index, weight * unigram)
    trie.smear(decoder.SmearingMode.MAX)
    return Lexicon(kenlm, words, {word: i for i, word in enumerate(words)}, trie, len(vocabulary))


def make_beam_decoder(alphabet: Alphabet, options: DecodingOptions) -> BeamDecoder:
    """The "beam" or "beam_lm" decoder `options` describe."""
    flashlight()
    try:
        check_alphabet(options.hotwords, alphabet)
    except HotwordError as error:
        raise DecoderError(f"hotwords: {error}") from None
    if options.decoder == "beam":  # hotwords need a Python LM; without them, flashlight's ZeroLM
        lm = word_lm(alphabet, None, 0.0, 0.0, hotwords=options.hotwords) if options.hotwords else None
        return BeamDecoder(alphabet, int(options.beam_width), lm, options.calibration, int(options.token_beam))
    if options.vocabulary == "closed":
        return LexiconBeamDecoder(alphabet, options)
    lm = word_lm(alphabet, options.lm_path, float(options.alpha), float(options.beta), float(options.unk_offset),
                 options.hotwords)
    return BeamDecoder(alphabet, int(options.beam_width), lm, options.calibration, int(options.token_beam))
