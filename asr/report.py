"""`asr score` reports: report.json (everything, machine-readable), report.md and report.html.

report.html is self-contained: inline CSS and plots embedded as base64 PNG (matplotlib, Agg canvas), so it
opens offline and can be mailed around. Every piece of user text goes through `html.escape`.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

from asr import bootstrap, compare, confidence, scoring
from asr.compare import Comparison, Paired
from asr.data import ManifestError, ValidationRules, infeasible_references
from asr.scoring import ScoreResult, UtteranceScore
from asr.utils import atomic_write

REPORT_SCHEMA = 1
UNSET = object()  # "not computed yet", as opposed to None ("no word confidences")
JSON_NAME, MD_NAME, HTML_NAME = "report.json", "report.md", "report.html"
MAX_HTML_UTTERANCES = 1000  # keeps the page usable in a browser; report.json has every row
MAX_PLOTTED_SPEAKERS = 40
# How each aligned word is shown ({r}: reference word, {h}: hypothesis word).
MD_ALIGNED = {"equal": "{r}", "substitute": "\\[{r}→{h}\\]", "delete": "\\[-{r}\\]", "insert": "\\[+{h}\\]"}
HTML_ALIGNED = {"equal": "{r}", "substitute": '<span class="sub" title="substitution"><s>{r}</s>&rarr;{h}</span>',
                "delete": '<span class="del" title="deletion">{r}</span>',
                "insert": '<span class="ins" title="insertion">{h}</span>'}
BAR_COLOR = "#1f77b4"  # the browser test looks for this colour to know the plots rendered
MD_SPECIAL = "\\`*_[]<>|#"
CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:2em auto;max-width:1150px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.sub{background:#ffe3a3;border-radius:3px;padding:0 2px}.sub s{color:#8a5a00}
.del{background:#ffc9c9;text-decoration:line-through;border-radius:3px;padding:0 2px}
.ins{background:#c9f0c9;text-decoration:underline;border-radius:3px;padding:0 2px}
.aligned{font-family:ui-monospace,monospace;line-height:1.8}.note{color:#555}
.legend span{margin-right:1em}img{max-width:100%;height:auto}code{word-break:break-all}
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _ci(interval: tuple[float, float] | None) -> str:
    return "n/a" if interval is None else f"{100 * interval[0]:.2f}% to {100 * interval[1]:.2f}%"


def _p(value: float | None, n_resamples: int) -> str:
    if value is None:
        return "n/a"
    return f"< {1 / n_resamples:.4g}" if value == 0 else f"{value:.4f}"


def report_json(result: ScoreResult, comparison: Comparison | None = None, words: object = UNSET) -> dict:
    """`words`: the confidence section if already computed (its bootstrap is the slow part)."""
    errors = result.frequent_errors()
    return {
        "schema": REPORT_SCHEMA,
        "inputs": {"reference": result.ref_path, "hypotheses": result.hyp_path,
                   "normalizer": result.normalizer, "match_method": result.match_method},
        "summary": {
            "wer": result.wer, "wer_ci": result.wer_ci, "cer": result.cer, "cer_ci": result.cer_ci,
            "ser": result.ser, "utterances": len(result.utterances),
            "sentence_errors": result.sentence_errors, "words": result.words.to_json(),
            "chars": result.chars.to_json(), "failed": len(result.failed), "missing": len(result.missing),
            "unmatched_hypotheses": len(result.unmatched_hypotheses),
            # References the model cannot emit even in principle; null when not checked (`asr score`).
            "infeasible_references": None if result.infeasible is None else len(result.infeasible),
        },
        "bootstrap": {"resamples": result.n_resamples, "seed": result.seed, "confidence": bootstrap.CONFIDENCE,
                      "method": bootstrap.BOOTSTRAP_METHOD},
        "notes": result.notes,
        "confidence": confidence_section(result) if words is UNSET else words,
        "by_duration": scoring.by_duration(result),
        "by_speaker": scoring.by_speaker(result),
        "errors": {
            "substitutions": [{"ref": r, "hyp": h, "count": n} for r, h, n in errors["substitutions"]],
            "insertions": [{"word": w, "count": n} for w, n in errors["insertions"]],
            "deletions": [{"word": w, "count": n} for w, n in errors["deletions"]],
        },
        "worst_utterances": [u.to_json(with_alignment=True) for u in result.worst()],
        "unmatched_references": [u.audio_filepath for u in result.missing],
        "failed": [{"audio_filepath": u.audio_filepath, "error": u.error} for u in result.failed],
        "unmatched_hypotheses": result.unmatched_hypotheses,
        "utterances": [u.to_json() for u in result.utterances],
        "comparison": comparison.to_json() if comparison else None,
    }


def _summary_rows(result: ScoreResult) -> list[tuple[str, str, str]]:
    w = result.words
    return [
        ("WER", _pct(result.wer), _ci(result.wer_ci)),
        ("CER", _pct(result.cer), _ci(result.cer_ci)),
        ("Sentence error rate", _pct(result.ser), ""),
        ("Utterances scored", str(len(result.utterances)), ""),
        ("Reference words", str(w.ref), ""),
        ("Hits / substitutions / deletions / insertions",
         f"{w.hits} / {w.substitutions} / {w.deletions} / {w.insertions}", ""),
        ("Failed inputs (scored as empty)", str(len(result.failed)), ""),
        ("References without hypothesis (scored as empty)", str(len(result.missing)), ""),
        ("Hypothesis rows without reference (not scored)", str(len(result.unmatched_hypotheses)), ""),
        ("References the model cannot emit (scored)",
         "not checked" if result.infeasible is None else str(len(result.infeasible)), ""),
    ]


def confidence_section(result: ScoreResult) -> dict | None:
    """AUROC, ECE and reliability bins of the hypothesis word confidences (None if the transcripts had none)."""
    return confidence.summarize(confidence.word_outcomes(result.utterances), result.n_resamples, result.seed)


def _inputs_rows(result: ScoreResult) -> list[tuple[str, str]]:
    return [("Reference manifest", result.ref_path or "-"), ("Hypotheses", result.hyp_path or "-"),
            ("Normaliser", result.normalizer), ("Rows matched by", result.match_method),
            ("Bootstrap", f"{result.n_resamples} resamples, seed {result.seed}; {bootstrap.BOOTSTRAP_METHOD}")]


def _delta_text(paired: Paired, n_resamples: int) -> str:
    return f"{_pct(paired.delta)} ({bootstrap.CI_LABEL} {_ci(paired.ci)}, p {_p(paired.p_value, n_resamples)})"


def _comparison_rows(c: Comparison) -> list[tuple[str, str, str, str]]:
    return [("WER", _pct(c.words.this.rate), _pct(c.words.other.rate), _delta_text(c.words, c.n_resamples)),
            ("CER", _pct(c.chars.this.rate), _pct(c.chars.other.rate), _delta_text(c.chars, c.n_resamples)),
            ("Word errors", str(c.words.this.errors), str(c.words.other.errors), "")]


# ---- Markdown --------------------------------------------------------------------------------------------

def _md(text: object) -> str:
    text = " ".join(str(text).split())
    return "".join("\\" + ch if ch in MD_SPECIAL else ch for ch in text)


def _md_table(header: list[str], rows: list) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows] + [""]


def md_alignment(chunks: list[dict]) -> str:
    """`the [cat→bat] sat [+down] [-word]`: substitutions, insertions and deletions in brackets."""
    return " ".join(MD_ALIGNED[op].format(r=_md(ref or ""), h=_md(hyp or ""))
                    for op, ref, hyp in scoring.aligned_words(chunks))


def render_markdown(result: ScoreResult, comparison: Comparison | None = None, words: object = UNSET) -> str:
    out = ["# ASR score report", ""]
    out += _md_table(["Input", "Value"], _inputs_rows(result))
    out += ["## Summary", ""] + _md_table(["Metric", "Value", bootstrap.CI_LABEL], _summary_rows(result))
    out += [f"- {_md(note)}" for note in result.notes] + [""]
    if comparison:
        out += ["## Comparison", "", f"This: `{comparison.this_name}` — other: `{comparison.other_name}`, "
                f"{comparison.common} common utterances. Delta = this - other.", ""]
        out += _md_table(["Metric", "This", "Other", "Delta"], _comparison_rows(comparison))
        out += [f"Method: {bootstrap.PAIRED_METHOD}.", ""] + [f"- {_md(n)}" for n in comparison.notes] + [""]
    section = confidence_section(result) if words is UNSET else words
    if section:
        summary, bins = confidence.report_rows(section)
        out += ["## Word confidence", ""] + _md_table(["Metric", "Value"], summary)
        out += _md_table(["Confidence bin", "Words", "Mean confidence", "Accuracy"], bins)
    tables = {"WER by duration": scoring.by_duration(result), "WER by speaker": scoring.by_speaker(result)}
    for title, table in tables.items():
        if table:
            rows = [(name, g["utterances"], g["ref_words"], g["errors"], _pct(g["wer"]))
                    for name, g in table.items()]
            out += [f"## {title}", ""] + _md_table(["Group", "Utterances", "Words", "Errors", "WER"], rows)
    out += ["## Worst utterances", "", "Marks: `[ref→hyp]` substitution, `[-word]` deletion, "
            "`[+word]` insertion.", ""]
    for number, u in enumerate(result.worst(), 1):
        out += [f"{number}. `{u.audio_filepath}` — WER {_pct(u.words.rate)}, {u.words.substitutions} S / "
                f"{u.words.deletions} D / {u.words.insertions} I ({u.status})", "",
                f"    {md_alignment(u.alignment)}", ""]
    out += ["## Frequent errors", ""]
    errors = result.frequent_errors()
    out += _md_table(["Reference", "Hypothesis", "Count"], errors["substitutions"])
    out += _md_table(["Inserted word", "Count"], errors["insertions"])
    out += _md_table(["Deleted word", "Count"], errors["deletions"])
    out += ["## Unmatched and failed rows", ""]
    out += _md_table(["Reference without hypothesis"], [(u.audio_filepath,) for u in result.missing])
    out += _md_table(["Failed input", "Error"], [(u.audio_filepath, u.error) for u in result.failed])
    out += _md_table(["Hypothesis without reference", "Line", "Reason"],
                     [tuple(h.values()) for h in result.unmatched_hypotheses])
    return "\n".join(out)


# ---- HTML ------------------------------------------------------------------------------------------------

def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(header: list[str], rows: list, numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    cell = '<td class="num">{}</td>', "<td>{}</td>"
    body = "".join("<tr>" + "".join(cell[i not in numeric].format(_esc(c)) for i, c in enumerate(row))
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else '<p class="note">None.</p>'


def html_alignment(chunks: list[dict]) -> str:
    parts = (HTML_ALIGNED[op].format(r=_esc(ref or ""), h=_esc(hyp or ""))
             for op, ref, hyp in scoring.aligned_words(chunks))
    return f'<div class="aligned">{" ".join(parts)}</div>'


def bar_chart_png(labels: list[str], rates: list[float], counts: list[int], title: str,
                  horizontal: bool = False) -> str:
    """A WER bar chart as base64 PNG."""
    # Imported here so scoring without a report, and `asr --help`, do not pay for matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = max(2.5, 0.32 * len(labels) + 1.2) if horizontal else 3.4
    figure = Figure(figsize=(9, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [label.replace("$", r"\$") for label in labels]  # "$" would start matplotlib mathtext
    values = [100 * rate for rate in rates]
    if horizontal:
        bars = axes.barh(labels, values, color=BAR_COLOR)
        axes.invert_yaxis()
        axes.set_xlabel("WER (%)")
    else:
        bars = axes.bar(labels, values, color=BAR_COLOR)
        axes.set_ylabel("WER (%)")
    axes.bar_label(bars, labels=[f"n={n}" for n in counts], fontsize=8)
    axes.set_title(title)
    axes.margins(0.12)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plot_section(title: str, table: dict[str, dict], horizontal: bool, limit: int | None = None) -> str:
    groups = [(name, g) for name, g in table.items() if g["wer"] is not None]
    note = ""
    if limit is not None and len(groups) > limit:
        groups = sorted(groups, key=lambda item: -item[1]["utterances"])[:limit]
        note = f'<p class="note">The {limit} largest groups are plotted; report.json has all.</p>'
    if not groups:
        return ""
    png = bar_chart_png([n for n, _ in groups], [g["wer"] for _, g in groups],
                        [g["utterances"] for _, g in groups], title, horizontal)
    return f'<h2>{_esc(title)}</h2><img alt="{_esc(title)}" src="data:image/png;base64,{png}">{note}'


def render_html(result: ScoreResult, comparison: Comparison | None = None, words: object = UNSET) -> str:
    body = ["<h1>ASR score report</h1>", _html_table(["Input", "Value"], _inputs_rows(result)),
            "<h2>Summary</h2>", _html_table(["Metric", "Value", bootstrap.CI_LABEL], _summary_rows(result), (1,)),
            "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in result.notes) + "</ul>",
            # Plots come first so they are on screen when the page opens.
            _plot_section("WER by utterance duration", scoring.by_duration(result), horizontal=False),
            _plot_section("WER by speaker", scoring.by_speaker(result), True, MAX_PLOTTED_SPEAKERS),
            _confidence_html(confidence_section(result) if words is UNSET else words)]
    if comparison:
        body += ["<h2>Comparison</h2>",
                 f"<p>This: <code>{_esc(comparison.this_name)}</code>; other: "
                 f"<code>{_esc(comparison.other_name)}</code>; {comparison.common} common utterances. "
                 "Delta = this &minus; other.</p>",
                 _html_table(["Metric", "This", "Other", "Delta"], _comparison_rows(comparison), (1, 2)),
                 f'<p class="note">Method: {_esc(bootstrap.PAIRED_METHOD)}.</p>',
                 "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in comparison.notes) + "</ul>",
                 "<h3>Utterances where the systems differ most</h3>",
                 _html_table(["File", "Reference", "This", "Other", "This errors", "Other errors"],
                             [tuple(d.values()) for d in comparison.differences], (4, 5))]
    body += ["<h2>Worst utterances</h2>",
             '<p class="legend"><span class="sub"><s>ref</s>&rarr;hyp</span> substitution '
             '<span class="del">word</span> deletion <span class="ins">word</span> insertion</p>',
             _worst_table(result.worst())]
    errors = result.frequent_errors()
    body += ["<h2>Frequent errors</h2>",
             _html_table(["Reference", "Hypothesis", "Count"], errors["substitutions"], (2,)),
             _html_table(["Inserted word", "Count"], errors["insertions"], (1,)),
             _html_table(["Deleted word", "Count"], errors["deletions"], (1,))]
    body += ["<h2>Unmatched and failed rows</h2>",
             _html_table(["Reference without hypothesis"], [(u.audio_filepath,) for u in result.missing]),
             _html_table(["Failed input", "Error"], [(u.audio_filepath, u.error) for u in result.failed]),
             _html_table(["Hypothesis without reference", "Line", "Reason"],
                         [tuple(h.values()) for h in result.unmatched_hypotheses])]
    body += ["<h2>Utterances</h2>", _utterance_table(result.utterances)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>ASR score report</title><style>{CSS}</style></head>\n"
            "<body>\n" + "\n".join(part for part in body if part) + "\n</body></html>\n")


def _confidence_html(section: dict | None) -> str:
    if section is None:
        return ""
    summary, bins = confidence.report_rows(section)
    return ("<h2>Word confidence</h2>" + f'<p class="note">{_esc(confidence.METHOD)}.</p>'
            + f'<img alt="Reliability diagram" src="data:image/png;base64,{confidence.reliability_png(section)}">'
            + _html_table(["Metric", "Value"], summary)
            + _html_table(["Confidence bin", "Words", "Mean confidence", "Accuracy"], bins, (1, 2, 3)))


def _worst_table(worst: list[UtteranceScore]) -> str:
    rows = "".join(f"<tr><td><code>{_esc(u.audio_filepath)}</code></td><td class=\"num\">{_pct(u.words.rate)}"
                   f"</td><td class=\"num\">{u.words.substitutions}/{u.words.deletions}/{u.words.insertions}"
                   f"</td><td>{html_alignment(u.alignment)}</td></tr>" for u in worst)
    head = "<tr><th>File</th><th>WER</th><th>S/D/I</th><th>Alignment</th></tr>"
    return f"<table>{head}{rows}</table>" if worst else '<p class="note">No errors.</p>'


def _utterance_table(utterances: list[UtteranceScore]) -> str:
    rows = [(u.audio_filepath, u.speaker or "", "" if u.duration is None else f"{u.duration:.2f}", u.status,
             u.reference, u.hypothesis, _pct(u.words.rate), _pct(u.chars.rate))
            for u in utterances[:MAX_HTML_UTTERANCES]]
    note = (f'<p class="note">First {MAX_HTML_UTTERANCES} of {len(utterances)} shown; report.json has all.'
            "</p>" if len(utterances) > MAX_HTML_UTTERANCES else "")
    return _html_table(["File", "Speaker", "Duration (s)", "Status", "Reference", "Hypothesis", "WER", "CER"],
                       rows, (2, 6, 7)) + note


# ---- writing and the command line ------------------------------------------------------------------------

SPEED_FILE = "speed.json"


def write_speed(report_dir: str | Path, audio_seconds: float, wall_seconds: float, threads: int) -> None:
    """How fast a system decoded a report's audio (speed.json beside report.json): × real time, threads used."""
    speed = {"audio_seconds": round(audio_seconds, 2), "wall_seconds": round(wall_seconds, 2), "threads": threads,
             "times_real_time": round(audio_seconds / max(wall_seconds, 1e-9), 2)}
    with atomic_write(Path(report_dir) / SPEED_FILE) as handle:
        json.dump(speed, handle, indent=1)
        handle.write("\n")


def write_reports(result: ScoreResult, report_dir: str | Path,
                  compare_with: Comparison | str | Path | None = None) -> dict[str, Path]:
    """Write report.json, report.md and report.html atomically; `compare_with` is a Comparison or the
    path of another system's report.json. Returns the written paths keyed json/md/html."""
    comparison = compare_with
    if isinstance(compare_with, str | Path):
        comparison = compare.compare(result, compare.load_report(compare_with), str(compare_with))
    report_dir = Path(report_dir)
    words = confidence_section(result)
    data = json.dumps(report_json(result, comparison, words), indent=2, ensure_ascii=False, allow_nan=False)
    renderers: dict[str, tuple[str, Callable[[], str]]] = {
        "json": (JSON_NAME, lambda: data + "\n"),
        "md": (MD_NAME, lambda: render_markdown(result, comparison, words)),
        "html": (HTML_NAME, lambda: render_html(result, comparison, words)),
    }
    paths = {}
    for kind, (name, render) in renderers.items():
        text = render()  # rendered before opening, so a rendering bug leaves the old report intact
        with atomic_write(report_dir / name) as handle:
            handle.write(text)
        paths[kind] = report_dir / name
    return paths


class ReportError(ValueError):
    """An input of `score_files` cannot be used (named in the message)."""


def score_files(ref: str, hyp: str, report_dir: str | Path, normalizer: str = "default",
                compare_with: str | None = None, n_resamples: int = bootstrap.DEFAULT_BOOTSTRAP,
                seed: int = bootstrap.DEFAULT_SEED, rules: ValidationRules | None = None,
                trn_dir: str | Path | None = None) -> tuple[ScoreResult, Comparison | None, dict[str, Path]]:
    """Score a transcripts file against a reference manifest and write the reports; returns what was written.

    Either file may be an sclite trn file (`.trn`). `rules` (the model's) let the report count the references
    the model cannot emit even in principle; `trn_dir` gets ref.trn and hyp.trn as scored (`scoring.write_trn`).
    """
    report_dir = Path(report_dir)
    if n_resamples < 0:
        raise ReportError("--bootstrap must be 0 or more")
    if report_dir.exists() and not report_dir.is_dir():
        raise ReportError(f"{report_dir}: --report must be a folder, and this is a file")
    try:
        refs = _read(scoring.read_references, ref)
        hyps = _read(scoring.read_hypotheses, hyp)
        other = _read(compare.load_report, compare_with) if compare_with else None
    except ManifestError as error:
        raise ReportError(str(error)) from None
    infeasible = infeasible_references(refs, rules) if rules is not None else None
    result = scoring.score(refs, hyps, normalizer, n_resamples=n_resamples, seed=seed, ref_path=str(ref),
                           hyp_path=str(hyp), infeasible=infeasible)
    comparison = compare.compare(result, other, str(compare_with)) if other is not None else None
    try:
        paths = write_reports(result, report_dir, comparison)
    except OSError as error:
        raise ReportError(f"{report_dir}: cannot write the report ({error.strerror or error})") from None
    if trn_dir is not None:
        try:
            paths["ref_trn"], paths["hyp_trn"] = scoring.write_trn(result, trn_dir)
        except OSError as error:
            raise ReportError(f"{trn_dir}: cannot write the trn files ({error.strerror or error})") from None
    return result, comparison, paths


def _read(reader: Callable, path: str) -> object:
    try:
        return reader(path)
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise ManifestError(f"{path}: cannot read ({error.strerror or error})") from None


def summary_text(result: ScoreResult, comparison: Comparison | None, paths: dict[str, Path]) -> str:
    lines = [f"WER {_pct(result.wer)} ({bootstrap.CI_LABEL} {_ci(result.wer_ci)})  CER {_pct(result.cer)} "
             f"({bootstrap.CI_LABEL} {_ci(result.cer_ci)})  SER {_pct(result.ser)}",
             f"{len(result.utterances)} utterances, {result.words.ref} reference words "
             f"({result.words.substitutions} S, {result.words.deletions} D, {result.words.insertions} I); "
             f"normaliser {result.normalizer}"]
    if not result.complete:
        lines.append(f"{len(result.failed)} failed, {len(result.missing)} references without hypothesis, "
                     f"{len(result.unmatched_hypotheses)} hypothesis rows without reference (see the report)")
    if result.infeasible:
        lines.append(f"{len(result.infeasible)} reference(s) the model cannot emit even in principle (scored)")
    if comparison:
        delta = _delta_text(comparison.words, comparison.n_resamples)
        lines.append(f"vs {comparison.other_name}: WER delta {delta}, {comparison.common} common utterances")
    lines.append("report: " + ", ".join(str(p) for kind, p in paths.items() if kind not in ("ref_trn", "hyp_trn")))
    if "ref_trn" in paths:
        lines.append(f"trn files: {paths['ref_trn']}, {paths['hyp_trn']}; NIST sclite counts the same: "
                     f"sclite -r {paths['ref_trn']} trn -h {paths['hyp_trn']} trn -i rm -o sum stdout")
    return "\n".join(lines)
