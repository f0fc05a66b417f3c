"""Word confidence: does a low score predict a wrong word? Metrics, calibration and the reliability diagram.

A hypothesis word is *correct* when the WER alignment (jiwer, `asr.scoring`) pairs it with an equal
reference word; substituted and inserted words are wrong. Over all scored words:

- AUROC: the probability that a correct word has a higher confidence than a wrong one (Mann–Whitney U,
  ties counted half); 0.5 is chance, 1.0 separates them perfectly. It says whether confidences *rank* well.
- ECE (expected calibration error): words are put in 10 equal-width confidence bins; ECE is the mean,
  weighted by bin size, of |accuracy - mean confidence| per bin. It says whether a confidence of 0.8 means
  80% of such words are right. 0 is perfect.

Calibration is Platt scaling: c -> sigmoid(logit(c) / temperature + bias), fitted on dev words by maximum
likelihood. It is monotone, so it leaves AUROC unchanged and only fixes ECE; it lives in a model folder's
decoding.yaml (`confidence_temperature`, `confidence_bias`).

Plain numpy on purpose: scikit-learn (roc_auc_score, calibration_curve) is not a dependency of this package,
and each of these is a few lines.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from asr.alignment import aligned_words
from asr.bootstrap import CI_LABEL, percentile_interval

ECE_BINS = 10
CLIP = 1e-6  # confidences are clipped to [CLIP, 1 - CLIP] before a logit, so 0 and 1 stay finite
FIT_ITERATIONS = 100
FIT_TOLERANCE = 1e-10
RIDGE = 1e-6  # a whisper of L2 on the fit, so separable data (a perfect confidence) still converges
PLOT_COLOR = "#1f77b4"
METHOD = (
    "a hypothesis word is correct when the WER alignment pairs it with an equal reference word; AUROC: "
    "P(confidence of a correct word > that of a wrong word), ties counted half; ECE: size-weighted mean "
    f"|accuracy - mean confidence| over {ECE_BINS} equal-width confidence bins"
)


class CalibrationError(ValueError):
    pass


def logit(confidence: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(confidence, dtype=np.float64), CLIP, 1 - CLIP)
    return np.log(c) - np.log1p(-c)


def platt(confidence: np.ndarray, temperature: float, bias: float) -> np.ndarray:
    """Calibrated confidences: sigmoid(logit(c) / temperature + bias)."""
    return 1.0 / (1.0 + np.exp(-(logit(confidence) / temperature + bias)))


def auroc(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `confidence` for telling correct words from wrong; None with one class."""
    scores, labels = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return None
    # Mann–Whitney: the rank sum of the positives, with tied scores sharing their average rank.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2
    ranks = average_rank[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin of [0, 1] (the last one closed): words, mean confidence and accuracy (None if empty)."""
    scores, labels = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    index = np.clip((scores * bins).astype(np.int64), 0, bins - 1)
    rows = []
    for b in range(bins):
        member = index == b
        count = int(member.sum())
        rows.append({"low": b / bins, "high": (b + 1) / bins, "words": count,
                     "mean_confidence": float(scores[member].mean()) if count else None,
                     "accuracy": float(labels[member].mean()) if count else None})
    return rows


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               bins: int = ECE_BINS) -> float | None:
    total = len(confidence)
    if total == 0:
        return None
    return float(sum(row["words"] / total * abs(row["accuracy"] - row["mean_confidence"])
                     for row in reliability_bins(confidence, correct, bins) if row["words"]))


def fit_platt(confidence: Sequence[float], correct: Sequence[bool]) -> tuple[float, float]:
    """(temperature, bias) maximising the likelihood of `correct` under sigmoid(logit(c) / temperature + bias).

    Newton's method on the two-parameter logistic regression of correctness on logit(c) (it is concave, so
    a few steps converge). Raises CalibrationError when the data cannot support a fit.
    """
    x, y = logit(confidence), np.asarray(correct, dtype=np.float64)
    if len(x) == 0 or y.min() == y.max():
        raise CalibrationError(f"calibration needs both correct and wrong words, got {int(y.sum())} correct "
                               f"of {len(y)}")
    design = np.stack([x, np.ones_like(x)], axis=1)
    weights = np.array([1.0, 0.0])
    for _ in range(FIT_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(design @ weights)))
        gradient = design.T @ (y - p) - RIDGE * weights
        hessian = (design * (p * (1 - p))[:, None]).T @ design + RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights = weights + step
        if np.abs(step).max() < FIT_TOLERANCE:
            break
    slope, bias = weights
    if slope <= 0:
        raise CalibrationError(f"confidence does not rise with correctness on this data (slope {slope:.3g}); "
                               "nothing to calibrate")
    return float(1.0 / slope), float(bias)


@dataclass
class WordOutcomes:
    """The scored hypothesis words: confidence, whether correct, and the index of the utterance of each."""

    confidence: np.ndarray
    correct: np.ndarray
    utterance: np.ndarray
    without_confidence: int = 0  # hypothesis words of utterances whose transcript gave no usable confidences


def word_outcomes(utterances: Iterable) -> WordOutcomes:
    """The hypothesis words of `asr.scoring.UtteranceScore`s: their alignment marks each word equal,
    substituted or inserted, and `word_confidences` holds one confidence per hypothesis word (or None)."""
    confidences: list[float] = []
    correct: list[bool] = []
    owners: list[int] = []
    without = 0
    for index, utterance in enumerate(utterances):
        labels = [op == "equal" for op, _, hyp in aligned_words(utterance.alignment) if hyp is not None]
        scores = utterance.word_confidences
        if scores is None or len(scores) != len(labels):
            without += len(labels)
            continue
        confidences += scores
        correct += labels
        owners += [index] * len(labels)
    return WordOutcomes(np.array(confidences, dtype=np.float64), np.array(correct, dtype=bool),
                        np.array(owners, dtype=np.int64), without)


def auroc_interval(outcomes: WordOutcomes, n_resamples: int, seed: int) -> tuple[float, float] | None:
    """Percentile bootstrap interval of AUROC at bootstrap.CONFIDENCE, resampling utterances (a transcript's
    words are not independent: a bad recording makes all of its words wrong); None when undefined."""
    order = np.argsort(outcomes.utterance, kind="stable")
    groups, starts = np.unique(outcomes.utterance[order], return_index=True)
    if n_resamples <= 0 or len(groups) == 0:
        return None
    members = np.split(order, starts[1:])  # the word indices of each utterance
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        rows = np.concatenate([members[i] for i in rng.integers(0, len(groups), len(groups))])
        value = auroc(outcomes.confidence[rows], outcomes.correct[rows])
        values.append(np.nan if value is None else value)  # undefined resamples are left out
    return percentile_interval(np.array(values, dtype=np.float64))


def summarize(outcomes: WordOutcomes, n_resamples: int = 0, seed: int = 0) -> dict | None:
    """The report's `confidence` section; None when no hypothesis word carried a confidence."""
    confidence, correct = outcomes.confidence, outcomes.correct
    if len(confidence) == 0:
        return None
    return {
        "words": int(len(confidence)), "correct": int(correct.sum()), "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()), "auroc": auroc(confidence, correct),
        "auroc_ci": auroc_interval(outcomes, n_resamples, seed),
        "ece": expected_calibration_error(confidence, correct), "bins": reliability_bins(confidence, correct),
        "words_without_confidence": int(outcomes.without_confidence), "method": METHOD,
    }


def report_rows(section: dict) -> tuple[list[tuple], list[tuple]]:
    """(summary rows, per-bin rows) of a confidence section, for the Markdown and HTML reports."""
    number = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
    interval = section["auroc_ci"]
    span = f" ({CI_LABEL} {interval[0]:.3f} to {interval[1]:.3f})" if interval else ""
    summary = [("AUROC (correct vs wrong words)", number(section["auroc"]) + span),
               (f"ECE ({ECE_BINS} bins)", number(section["ece"])),
               ("Words with a confidence / correct", f"{section['words']} / {section['correct']}"),
               ("Mean confidence / accuracy", f"{number(section['mean_confidence'])} / {number(section['accuracy'])}"),
               ("Hypothesis words without a confidence", str(section["words_without_confidence"]))]
    bins = [(f"{b['low']:.1f}-{b['high']:.1f}", b["words"], number(b["mean_confidence"]), number(b["accuracy"]))
            for b in section["bins"]]
    return summary, bins

def reliability_png(section: dict) -> str:
    """A reliability diagram (accuracy per confidence bin against the diagonal) as base64 PNG."""
    # Imported here so scoring without a report does not pay for matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    filled = [row for row in section["bins"] if row["words"]]
    bars = axes.bar([(row["low"] + row["high"]) / 2 for row in filled], [row["accuracy"] for row in filled],
                    width=[row["high"] - row["low"] for row in filled], color=PLOT_COLOR, edgecolor="white",
                    label="accuracy of the bin's words")
    axes.bar_label(bars, labels=[f"n={row['words']}" for row in filled], fontsize=7)
    axes.plot([row["mean_confidence"] for row in filled], [row["accuracy"] for row in filled], "o",
              color="#d62728", markersize=4, label="(mean confidence, accuracy)")
    axes.plot([0, 1], [0, 1], "--", color="#555555", linewidth=1, label="perfect calibration")
    auroc_text = "n/a" if section["auroc"] is None else f"{section['auroc']:.3f}"
    axes.set_title(f"Word confidence: AUROC {auroc_text}, ECE {section['ece']:.3f}")
    axes.set_xlabel("word confidence")
    axes.set_ylabel("fraction of words correct")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.08)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def token_confidences(words: Sequence[tuple[str, float]] | None, tokens: Sequence[str], normalize,
                      ) -> list[float] | None:
    """One confidence per scored hypothesis token, from the transcript's words (each normalised as scoring
    normalises the text); None when the words do not spell out exactly those tokens (then none are used)."""
    if words is None:
        return None
    spelled: list[str] = []
    confidences: list[float] = []
    for word, confidence in words:
        pieces = normalize(word).split()  # "5" -> "five", "twenty-one" -> two tokens, a stray "'" -> none
        spelled += pieces
        confidences += [confidence] * len(pieces)
    return confidences if spelled == list(tokens) else None


def word_confidence_pairs(words: object) -> list[tuple[str, float]] | None:
    """(word, confidence) pairs of a row's `words`; None unless every word has both (other systems' rows
    may carry no confidences, or other fields: the text is still scored, only confidences are not)."""
    if not isinstance(words, list):
        return None
    pairs = []
    for word in words:
        if not (isinstance(word, dict) and isinstance(word.get("word"), str)
                and isinstance(word.get("confidence"), int | float) and not isinstance(word["confidence"], bool)
                and 0 <= word["confidence"] <= 1):
            return None
        pairs.append((word["word"], float(word["confidence"])))
    return pairs

