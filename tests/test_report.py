"""`asr score` reports: json/md/html written, self-contained escaped HTML, CLI exit codes, a real browser."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr import cli as asr_cli
from asr.data import Utterance
from asr.report import BAR_COLOR, write_reports
from asr.scoring import score

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMG_SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest and a transcript with one failed input, one missing and one stray row, two speakers."""
    texts = ["turn left at the light", "press five for sales", "the meeting is at noon", "call me back",
             "open the door please", "it is raining again"]
    refs = [{"audio_filepath": f"audio/u{i}.wav", "duration": 1.0 + 3 * i, "text": text,
             "speaker": "ann" if i % 2 else "bob"} for i, text in enumerate(texts)]
    hyps = [{"audio_filepath": f"../audio/u{i}.wav", "text": text.replace("the", "a")}
            for i, text in enumerate(texts[:4])]
    hyps[1] = {"audio_filepath": "../audio/u1.wav", "error": "decoder <crashed>"}
    hyps.append({"audio_filepath": "../audio/stray.wav", "text": "nobody asked"})
    (tmp_path / "out").mkdir()
    return write_jsonl(tmp_path / "ref.jsonl", refs), write_jsonl(tmp_path / "out" / "hyp.jsonl", hyps)


def cli(*argv: str) -> int:
    return asr_cli.main(["score", *argv])


def test_write_reports_writes_all_three(tmp_path: Path):
    refs = [Utterance(str(tmp_path / f"{i}.wav"), 2.0 * i, "a b c", speaker=f"s{i % 2}") for i in range(4)]
    hyps = [{"audio_filepath": str(tmp_path / f"{i}.wav"), "text": "a x c"} for i in range(4)]
    paths = write_reports(score(refs, hyps, "none", n_resamples=50), tmp_path / "report")
    assert sorted(p.name for p in paths.values()) == ["report.html", "report.json", "report.md"]
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["wer"] == pytest.approx(1 / 3)
    assert data["inputs"]["normalizer"] == "none"
    assert len(data["utterances"]) == 4 and data["comparison"] is None
    assert data["errors"]["substitutions"] == [{"ref": "b", "hyp": "x", "count": 4}]
    assert "| WER | 33.33% |" in paths["md"].read_text()
    assert not list((tmp_path / "report").glob(".*.tmp"))  # atomic writes leave no temporaries


def test_cli_scores_and_reports_unmatched_and_failed(corpus, tmp_path: Path, capsys):
    ref_path, hyp_path = corpus
    report = tmp_path / "report"
    args = ["--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(report), "--bootstrap", "200"]
    assert cli(*args) == 1
    out = capsys.readouterr().out
    assert "WER" in out and "95% CI" in out and str(report / "report.html") in out
    data = json.loads((report / "report.json").read_text())
    assert data["summary"]["failed"] == 1 and data["summary"]["missing"] == 2
    assert [u["audio_filepath"].endswith("stray.wav") for u in data["unmatched_hypotheses"]] == [True]
    assert len(data["unmatched_references"]) == 2
    assert data["failed"][0]["error"] == "decoder <crashed>"
    assert data["summary"]["wer_ci"][0] <= data["summary"]["wer"] <= data["summary"]["wer_ci"][1]
    assert set(data["by_speaker"]) == {"ann", "bob"}
    worst = data["worst_utterances"][0]
    assert worst["alignment"] and {"op", "ref", "hyp"} <= set(worst["alignment"][0])
    markdown = (report / "report.md").read_text()
    headings = ("## Summary", "## Worst utterances", "## Frequent errors", "## Unmatched and failed rows")
    assert all(heading in markdown for heading in headings)
    assert "stray.wav" in markdown and "Normaliser | default" in markdown


def test_cli_returns_zero_when_everything_matches(tmp_path: Path, capsys):
    ref_path = write_jsonl(tmp_path / "ref.jsonl", [{"audio_filepath": "a.wav", "duration": 1,
                                                     "text": "Hi 2"}])
    hyp_path = write_jsonl(tmp_path / "hyp.jsonl", [{"audio_filepath": "a.wav", "text": "hi two"}])
    assert cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "r")) == 0
    assert "WER 0.00%" in capsys.readouterr().out


def test_cli_bad_json_line_is_a_usage_error_naming_file_and_line(corpus, tmp_path: Path, capsys):
    ref_path, hyp_path = corpus
    hyp_path.write_text(hyp_path.read_text() + "{broken\n")
    assert cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "r")) == 2
    assert f"{hyp_path}:6: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert cli("--ref", str(tmp_path / "nope.jsonl"), "--hyp", str(hyp_path), "--report", "r") == 2
    assert "nope.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", "r", "--bootstrap", "-1")
    assert stopped.value.code == 2 and "must be 0 or more" in capsys.readouterr().err


def test_cli_compare_adds_paired_test(corpus, tmp_path: Path, capsys):
    ref_path, hyp_path = corpus
    assert cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "a")) == 1
    args = ["--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "b")]
    assert cli(*args, "--compare", str(tmp_path / "a" / "report.json")) == 1
    assert "WER delta 0.00%" in capsys.readouterr().out
    comparison = json.loads((tmp_path / "b" / "report.json").read_text())["comparison"]
    assert comparison["wer"]["delta"] == 0.0 and comparison["wer"]["p_value"] == 1.0
    assert "paired bootstrap" in comparison["method"]
    assert "## Comparison" in (tmp_path / "b" / "report.md").read_text()
    assert "Comparison</h2>" in (tmp_path / "b" / "report.html").read_text()
    assert cli(*args, "--compare", str(ref_path)) == 2  # a manifest is not a report
    assert f"{ref_path}:2: not valid JSON" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"utterances": [{"audio_filepath": "a.wav"}]}')
    assert cli(*args, "--compare", str(tmp_path / "other.json")) == 2
    assert "not an `asr score` report" in capsys.readouterr().err


def test_html_is_self_contained_with_png_plots(corpus, tmp_path: Path):
    ref_path, hyp_path = corpus
    cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "r"), "--bootstrap", "100")
    page = (tmp_path / "r" / "report.html").read_text()
    images = IMG_SRC.findall(page)
    assert len(images) == 2  # WER by duration and by speaker
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)
    assert "<style>" in page and "<link" not in page and "<script" not in page
    assert 'class="sub"' in page and 'class="del"' in page


def test_html_escapes_user_text(tmp_path: Path):
    evil = "<script>alert('x')</script> & <b>"
    refs = [Utterance(str(tmp_path / "a.wav"), 1.0, "fine words here", speaker="<i>spk</i>")]
    hyps = [{"audio_filepath": str(tmp_path / "a.wav"), "text": evil}]
    paths = write_reports(score(refs, hyps, "none", n_resamples=10), tmp_path / "r")
    page = paths["html"].read_text()
    assert "<script>" not in page and "<b>" not in page and "<i>spk" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    markdown = paths["md"].read_text()
    assert "<script>" not in markdown and "\\<script\\>" in markdown


def test_browser_renders_report(corpus, tmp_path: Path):
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the HTML report test needs a real browser; "
        "install it with `apt-get update && apt-get install -y chromium`")
    import matplotlib.image

    ref_path, hyp_path = corpus
    cli("--ref", str(ref_path), "--hyp", str(hyp_path), "--report", str(tmp_path / "r"), "--bootstrap", "100")
    shot = tmp_path / "shot.png"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000", f"--screenshot={shot}",
               (tmp_path / "r" / "report.html").as_uri()]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05
    colours = np.unique((pixels * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50
    bar = np.array([int(BAR_COLOR[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    bar_pixels = int((np.abs(pixels - bar).max(axis=-1) < 0.03).sum())
    assert bar_pixels > 2000, "no plot bars visible in the rendered page"
