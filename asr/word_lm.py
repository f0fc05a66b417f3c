"""The language models the beam searches of `asr.beam_search` hand to flashlight-text: KenLM (flashlight's bundled
copy) loaded once per ARPA file, and the flashlight `LM` subclasses written in Python.

- `word_lm`: the open-vocabulary search asks its LM for a score per character; this LM scores nothing inside a
  word and the whole word when a space (or the utterance end) closes it: alpha · ln p(word | previous words) +
  beta, plus `unk_offset` for a word KenLM has never seen, plus the boost of a hotword. Without an ARPA file
  (the "beam" decoder given hotwords) only the boosts count.
- `boosted_kenlm`: the closed-vocabulary search scores a word when it completes it in the trie; this LM is KenLM
  with alpha · ln 10 folded in (so the search runs at lm_weight 1, and a boost counts even at alpha 0) and each
  hotword's boost added. Used only with hotwords: without them the search calls flashlight's C++ KenLM directly.

A hotword the ARPA file lacks is scored as <unk> (and not charged `unk_offset`: the user named it).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

from asr.decoding import DecoderError, separator_class
from asr.hotwords import Hotwords
from asr.lm import LMError, arpa_vocabulary
from asr.text import Alphabet
from asr.utils import silenced_stderr

LN10 = math.log(10.0)  # ARPA and KenLM work in log10, the acoustic scores in natural log
UNK = "<unk>"
UNK_INDEX = 0  # of <unk> in `load_kenlm`'s vocabulary, so that KenLM scores an index past it as <unk>


def flashlight():
    try:
        from flashlight.lib.text import decoder
    except ImportError:
        raise DecoderError("beam decoders need the flashlight-text package (pip install flashlight-text)") from None
    return decoder


def lm_key(lm_path: str | Path | None) -> tuple[str, tuple[int, int]]:
    """(path, (mtime, size)) of an existing LM file: the cache key, so an edited file is reloaded."""
    path = Path(lm_path) if lm_path is not None else None
    if path is None or not path.is_file():
        raise DecoderError(f"lm_path: {lm_path}: language model file not found")
    stat = path.stat()
    return str(path), (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def load_kenlm(path: str, stamp: tuple[int, int]):
    """(KenLM, its vocabulary by index) for an ARPA file, cached on (path, mtime, size): a grid search loads it
    once."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    try:
        vocabulary = list(dict.fromkeys([UNK, *arpa_vocabulary(path)]))  # <unk> first: UNK_INDEX
        with silenced_stderr():
            kenlm = KenLM(path, Dictionary(vocabulary))
    except (LMError, RuntimeError) as error:
        raise DecoderError(f"lm_path: {path}: cannot load the ARPA language model ({error})") from None
    return kenlm, vocabulary


class _KenLMWords:
    """Whole words scored in nats by KenLM given the previous ones (contexts are KenLM states)."""

    def __init__(self, lm_path: str | Path | None, alpha: float, beta: float, unk_offset: float, hotwords: Hotwords):
        self.kenlm, vocabulary = load_kenlm(*lm_key(lm_path))
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.weight, self.beta, self.unk_offset, self.boost = alpha * LN10, beta, unk_offset, dict(hotwords)

    def start(self, start_with_nothing: bool):
        return self.kenlm.start(start_with_nothing)

    def score(self, context, word: str):
        index = self.index.get(word)
        next_context, log10_prob = self.kenlm.score(context, UNK_INDEX if index is None else index)
        bonus = self.boost.get(word, self.unk_offset if index is None else 0.0)
        return next_context, self.weight * log10_prob + self.beta + bonus

    def finish(self, context) -> float:
        return self.weight * self.kenlm.finish(context)[1]


class _BoostedWords:
    """No LM: each hotword scores its boost, any other word 0 (the "beam" decoder given hotwords)."""

    def __init__(self, hotwords: Hotwords):
        self.boost = dict(hotwords)

    def start(self, start_with_nothing: bool):
        return None

    def score(self, context, word: str):
        return None, self.boost.get(word, 0.0)

    def finish(self, context) -> float:
        return 0.0


def word_lm(alphabet: Alphabet, lm_path: str | Path | None, alpha: float, beta: float, unk_offset: float = 0.0,
            hotwords: Hotwords = ()):
    """A flashlight LM for the lexicon-free search scoring whole words when a separator or the utterance end
    closes them; without `lm_path`, only the hotwords' boosts."""
    from flashlight.lib.text.decoder import LM, LMState

    words = _KenLMWords(lm_path, alpha, beta, unk_offset, hotwords) if lm_path is not None else _BoostedWords(hotwords)
    separator = separator_class(alphabet)

    class WordLM(LM):
        def __init__(self):
            LM.__init__(self)
            self.words = words  # kept alive with the decoder
            self._states: dict = {}  # LMState (one per prefix) -> (word context, partial word, score of its last step)

        def start(self, start_with_nothing: bool):
            state = LMState()
            self._states = {state: (words.start(start_with_nothing), "", 0.0)}  # a new utterance: forget the last
            return state

        def score(self, state, token: int):
            child = state.child(token)  # one object per prefix, so equal prefixes merge in the search
            if child not in self._states:
                context, partial, _ = self._states[state]
                if token != separator:
                    self._states[child] = (context, partial + alphabet.characters[token - 1], 0.0)
                elif partial:
                    next_context, word_score = words.score(context, partial)
                    self._states[child] = (next_context, "", word_score)
                else:  # a space with no word before it (leading or doubled): nothing to score
                    self._states[child] = (context, "", 0.0)
            return child, self._states[child][2]

        def finish(self, state):
            context, partial, _ = self._states[state]
            total = 0.0
            if partial:
                context, total = words.score(context, partial)
            return state, total + words.finish(context)

    return WordLM()


def boosted_kenlm(kenlm, weight: float, hotword_indices: dict[int, float], kenlm_size: int):
    """KenLM for the lexicon search, scores in nats (`weight` = alpha · ln 10), plus the boost of each hotword index;
    an index from `kenlm_size` on (a hotword the ARPA lacks) is scored as <unk>.

    States are this LM's own, one per (state, word), each mapped to its KenLM state: the hotwords the ARPA lacks
    share <unk>'s KenLM state, and the search merges hypotheses whose states are the same object."""
    from flashlight.lib.text.decoder import LM, LMState

    class BoostedKenLM(LM):
        def __init__(self):
            LM.__init__(self)
            self.kenlm = kenlm  # kept alive with the decoder
            self._states: dict = {}  # this LM's state -> (KenLM state, score of the word that led to it)

        def start(self, start_with_nothing: bool):
            state = LMState()
            self._states = {state: (kenlm.start(start_with_nothing), 0.0)}  # a new utterance: forget the last
            return state

        def score(self, state, index: int):
            child = state.child(index)
            if child not in self._states:
                context, log10_prob = kenlm.score(self._states[state][0], index if index < kenlm_size else UNK_INDEX)
                self._states[child] = (context, weight * log10_prob + hotword_indices.get(index, 0.0))
            return child, self._states[child][1]

        def finish(self, state):
            return state, weight * kenlm.finish(self._states[state][0])[1]

    return BoostedKenLM()
