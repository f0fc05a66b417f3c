"""Word n-gram language models: estimate one from transcripts and write it as ARPA; read ARPA back and score.

No pip-installable package ships a working ARPA estimator (KenLM's `lmplz` is a C++ program that its PyPI
package does not include; NLTK's `nltk.lm` estimates but cannot write ARPA), so this is a small one:
interpolated Kneser-Ney with one absolute discount per order (Chen & Goodman 1998, section 3):

    p(w | h) = max(a(h w) - D_n, 0) / a(h •) + gamma(h) p(w | h'),    gamma(h) = D_n N1+(h •) / a(h •)

where h' drops the oldest word of h, a() are KN "adjusted" counts (raw counts at the highest order and for
n-grams that start with <s>, the number of distinct left neighbours otherwise), N1+(h •) is the number of
distinct words seen after h, and the unigram level interpolates with the uniform distribution over the
vocabulary (which includes </s> and <unk>, not <s>). Given a background vocabulary (word -> relative
frequency, e.g. a general English word list), its words join the vocabulary and the unigram level interpolates
with a distribution proportional to those frequencies instead: words the transcripts never contain share the
mass gamma() that Kneser-Ney sets aside for unseen words, by how common they are. Written as ARPA, a listed
n-gram stores its full interpolated probability and gamma(h) is exactly the backoff weight of h, so the
backoff reading of the file gives the same distribution, which sums to one for every context.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.text import normalize_text
from asr.utils import atomic_write

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
BACKGROUND_LANGUAGE = "en"
WORDFREQ_MISSING = "--background-words needs the wordfreq package: pip install -e '.[lm]' (the 'lm' extra)"
MANIFEST_SUFFIXES = (".json", ".jsonl")
DEFAULT_ORDER = 3
MAX_ORDER = 6
FALLBACK_DISCOUNT = 0.5  # used when an order has no singletons or no doubletons (tiny corpora)
DISCOUNT_RANGE = (0.1, 0.9)  # keep some mass for backoff and some for seen n-grams, whatever the counts say
ARPA_ZERO = -99.0  # log10 probability ARPA uses for "never predicted" (<s>)

Ngram = tuple[str, ...]


class LMError(ValueError):
    pass


@dataclass
class NgramModel:
    """An n-gram model in backoff form: log10 probabilities and log10 backoff weights per n-gram."""

    order: int
    logprob: dict[Ngram, float] = field(default_factory=dict)
    backoff: dict[Ngram, float] = field(default_factory=dict)

    def vocabulary(self) -> list[str]:
        return [ngram[0] for ngram in self.logprob if len(ngram) == 1]

    def counts(self) -> list[int]:
        sizes = Counter(len(ngram) for ngram in self.logprob)
        return [sizes[n] for n in range(1, self.order + 1)]

    def log10_prob(self, word: str, context: Iterable[str] = ()) -> float:
        """log10 p(word | context) by ARPA backoff; unknown words are scored as <unk>."""
        unigrams = self.logprob
        word = word if (word,) in unigrams else UNK
        history = tuple(w if (w,) in unigrams else UNK for w in context)[-(self.order - 1):] if self.order > 1 else ()
        penalty = 0.0
        while (*history, word) not in self.logprob:
            if not history:
                raise LMError(f"{word!r} is not in the model and it has no {UNK}")
            penalty += self.backoff.get(history, 0.0)
            history = history[1:]
        return penalty + self.logprob[(*history, word)]


def read_sentences(path: str | Path) -> Iterator[str]:
    """Normalised sentences from a text file (one per line) or a JSONL manifest's `text` fields."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: text or manifest file not found")
    is_manifest = path.suffix.lower() in MANIFEST_SUFFIXES
    with path.open(encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                text = _manifest_text(line, f"{path}:{number}") if is_manifest else line
                sentence = normalize_text(text)
                if sentence:
                    yield sentence
        except UnicodeDecodeError:
            raise LMError(f"{path}: not UTF-8 text") from None  # text is decoded by the block: no line number


def _manifest_text(line: str, where: str) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise LMError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise LMError(f"{where}: field 'text' is missing or not a string")
    return row["text"]


def count_ngrams(sentences: Iterable[str], order: int) -> list[Counter]:
    """Raw counts per order (index n-1) over sentences padded with <s> ... </s>."""
    counts = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = [BOS, *sentence.split(), EOS]
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                counts[n - 1][tuple(words[i:i + n])] += 1
    del counts[0][(BOS,)]  # <s> is a context, never predicted
    return counts


def adjusted_counts(raw: list[Counter]) -> list[Counter]:
    """KN counts: raw at the top order and for n-grams starting with <s>; distinct left neighbours otherwise."""
    adjusted = [Counter() for _ in raw]
    adjusted[-1] = Counter(raw[-1])
    for n in range(len(raw) - 1):
        for ngram, count in raw[n].items():
            if ngram[0] == BOS:
                adjusted[n][ngram] = count
        for longer in raw[n + 1]:  # every n-gram not starting with <s> has a left neighbour
            adjusted[n][longer[1:]] += 1
    return adjusted


def discount(counts: Counter) -> float:
    """D = n1 / (n1 + 2 n2) (Ney et al.), clamped; n_k = number of n-grams whose count is exactly k."""
    histogram = Counter(counts.values())
    n1, n2 = histogram[1], histogram[2]
    value = n1 / (n1 + 2 * n2) if n1 and n2 else FALLBACK_DISCOUNT
    return min(max(value, DISCOUNT_RANGE[0]), DISCOUNT_RANGE[1])


def base_distribution(vocabulary: Sequence[str], background: Mapping[str, float] | None = None) -> dict[str, float]:
    """What the unigram level interpolates with: uniform, or proportional to `background` frequencies, where a
    word it does not list (</s>, <unk>, a transcript word it lacks) weighs as its rarest listed word."""
    if not background:
        return dict.fromkeys(vocabulary, 1.0 / len(vocabulary))
    floor = min(background.values())
    weights = {word: background.get(word, floor) for word in vocabulary}
    total = sum(weights.values())
    return {word: weight / total for word, weight in weights.items()}


def estimate(sentences: Iterable[str], order: int = DEFAULT_ORDER,
             background: Mapping[str, float] | None = None) -> NgramModel:
    """Interpolated Kneser-Ney model of `order` from normalised sentences (words separated by spaces), its
    vocabulary widened by `background` (word -> relative frequency, all positive) when given."""
    if background and min(background.values()) <= 0:
        raise LMError("background word frequencies must all be positive")
    if not 1 <= order <= MAX_ORDER:
        raise LMError(f"order must be between 1 and {MAX_ORDER}, got {order}")
    raw = count_ngrams(sentences, order)
    if not raw[0]:
        raise LMError("no text to build a language model from")
    while len(raw) > 1 and not raw[-1]:  # sentences too short for the top order: an empty section helps nobody
        raw.pop()
    order = len(raw)
    counts = adjusted_counts(raw)
    vocabulary = sorted({w for (w,) in counts[0]} | set(background or ()) | {EOS, UNK})
    model = NgramModel(order)
    base = base_distribution(vocabulary, background)
    lower: dict[Ngram, float] = {}
    for n, order_counts in enumerate(counts, 1):
        d = discount(order_counts)
        totals: dict[Ngram, float] = defaultdict(float)
        followers: dict[Ngram, int] = defaultdict(int)
        for ngram, count in order_counts.items():
            totals[ngram[:-1]] += count
            followers[ngram[:-1]] += 1
        gamma = {h: d * followers[h] / totals[h] for h in totals}
        probs = {ngram: (count - d) / totals[ngram[:-1]]
                 + gamma[ngram[:-1]] * (lower[ngram[1:]] if n > 1 else base[ngram[0]])
                 for ngram, count in order_counts.items()}
        if n == 1:  # vocabulary words the transcripts never contain: backoff mass only
            probs.update({(word,): gamma[()] * base[word] for word in vocabulary if (word,) not in probs})
        model.logprob.update({ngram: math.log10(p) for ngram, p in probs.items()})
        model.backoff.update({h: math.log10(g) for h, g in gamma.items() if h})
        lower = _with_backoff(probs, gamma, lower)
    model.logprob[(BOS,)] = ARPA_ZERO
    return model


def _with_backoff(probs: dict[Ngram, float], gamma: dict[Ngram, float], lower: dict[Ngram, float]):
    """A lookup of p(w | h) for the next order: the listed value, else gamma(h) p(w | h')."""

    class Lookup(dict):
        def __missing__(self, ngram: Ngram) -> float:
            value = gamma.get(ngram[:-1], 1.0) * lower[ngram[1:]]
            self[ngram] = value
            return value

    return Lookup(probs)


def write_arpa(model: NgramModel, path: str | Path) -> None:
    """ARPA text, written atomically (temporary file + rename). Backoff weights only where a context has one."""
    with atomic_write(path) as handle:
        handle.write("\\data\\\n")
        for n, size in enumerate(model.counts(), 1):
            handle.write(f"ngram {n}={size}\n")
        for n in range(1, model.order + 1):
            handle.write(f"\n\\{n}-grams:\n")
            for ngram in sorted(g for g in model.logprob if len(g) == n):
                line = f"{model.logprob[ngram]:.6f}\t{' '.join(ngram)}"
                if ngram in model.backoff:
                    line += f"\t{model.backoff[ngram]:.6f}"
                handle.write(line + "\n")
        handle.write("\n\\end\\\n")


def read_arpa(path: str | Path) -> NgramModel:
    """Parse an ARPA file; checks that each section has the number of entries its header announces."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: ARPA file not found")
    announced: dict[int, int] = {}
    model = NgramModel(0)
    section = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            if line.startswith("ngram ") and section is None:
                n, size = line[6:].split("=")
                announced[int(n)] = int(size)
            elif line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1:-7])
                model.order = max(model.order, section)
            elif section is not None:
                _parse_entry(model, line, section, f"{path}:{number}")
            else:
                raise LMError(f"{path}:{number}: not an ARPA file (unexpected {line[:40]!r})")
    found = model.counts()
    if not announced or [announced.get(n, 0) for n in range(1, model.order + 1)] != found:
        raise LMError(f"{path}: header announces n-gram counts {announced}, the sections hold {found}")
    return model


def _parse_entry(model: NgramModel, line: str, n: int, where: str) -> None:
    fields = line.split()
    if len(fields) not in (n + 1, n + 2):
        raise LMError(f"{where}: expected a {n}-gram entry, got {line[:60]!r}")
    try:
        ngram = tuple(fields[1:n + 1])
        model.logprob[ngram] = float(fields[0])
        if len(fields) == n + 2:
            model.backoff[ngram] = float(fields[-1])
    except ValueError:
        raise LMError(f"{where}: not a number in {line[:60]!r}") from None


def arpa_vocabulary(path: str | Path) -> list[str]:
    """The words of an ARPA file's unigram section, read without loading the higher orders."""
    words = []
    try:
        with Path(path).open(encoding="utf-8") as handle:
            in_unigrams = False
            for line in handle:
                line = line.strip()
                if line == "\\1-grams:":
                    in_unigrams = True
                elif in_unigrams and line.startswith("\\"):
                    break
                elif in_unigrams and line:
                    fields = line.split()
                    if len(fields) >= 2:
                        words.append(fields[1])
    except (OSError, UnicodeDecodeError) as error:
        raise LMError(f"{path}: cannot read the ARPA file ({error})") from None
    if not words:
        raise LMError(f"{path}: not an ARPA file (no \\1-grams: section)")
    return words


def background_words(count: int, language: str = BACKGROUND_LANGUAGE) -> dict[str, float]:
    """The `count` most common words of `language` that are their own normalised spelling -> relative frequency.

    From the `wordfreq` package's "large" list (its data ships in the wheel: nothing is downloaded), imported
    only here: decoding with an LM file that carries the words needs no wordfreq. Words that do not survive text
    normalisation unchanged (digits, accents, other scripts) are left out.
    """
    try:
        import wordfreq
    except ImportError:
        raise LMError(WORDFREQ_MISSING) from None

    words: dict[str, float] = {}
    for word in wordfreq.iter_wordlist(language, wordlist="large"):
        if len(words) == count:
            break
        if word.isascii() and normalize_text(word) == word and word not in (BOS, EOS, UNK):
            words[word] = wordfreq.word_frequency(word, language, wordlist="large")
    return words


def build_lm(source: str | Path | Sequence[str | Path], out: str | Path, order: int = DEFAULT_ORDER,
             background: Mapping[str, float] | None = None) -> NgramModel:
    """Text file(s) or manifest(s) -> ARPA file at `out`, their sentences pooled; returns the model."""
    sources = [source] if isinstance(source, str | Path) else list(source)
    model = estimate(itertools.chain.from_iterable(read_sentences(path) for path in sources), order, background)
    write_arpa(model, out)
    return model
