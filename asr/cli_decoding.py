"""`asr transcribe`, `asr evaluate` and `asr score`: the decoding and scoring commands of `asr.cli`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from asr.cli_common import EXIT_OK, EXIT_PARTIAL, UsageError, non_negative_int


def add_transcribe(commands) -> None:
    from asr.outputs import FORMATS

    parser = commands.add_parser(
        "transcribe", help="transcribe audio files (the main job)",
        description="Transcribe audio files, folders (recursively), glob patterns or manifests. Inputs that "
                    "cannot be read are reported (in the output and on stderr) and the batch goes on; exit "
                    "status 1 if any failed. Only speech is decoded (--vad): silence and noise give empty text. Long "
                    "files are decoded in windows cut at pauses (or overlapping), in bounded memory.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio file, folder, glob pattern or manifest")
    parser.add_argument("--model", type=Path, help="run directory, .keras file or exported SavedModel "
                                                    "(default: the bundled model)")
    parser.add_argument("--out", type=Path, help="output file, or folder (existing, or ending in /) for one "
                                                  "file per input (default: stdout)")
    parser.add_argument("--format", choices=FORMATS,
                        help="txt (path<TAB>text), jsonl (with word timings), ctm (NIST: one word a line, the "
                             "utterance id being the file's stem), srt, vtt, textgrid (Praat, a 'words' tier; "
                             "extra 'formats') (default: from --out's extension, else txt)")
    parser.add_argument("--resume", action="store_true", help="skip inputs already transcribed in --out")
    parser.add_argument("--min-confidence", type=float, metavar="X",
                        help="jsonl only: mark each word with \"low_confidence\": true/false (confidence < X) and "
                             "each row with its count \"low_confidence_words\", to flag transcripts for review; "
                             "no word is removed")
    _add_decoding_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_transcribe)


def _add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    from asr.decoding import DECODERS, VOCABULARIES, DecodingOptions
    from asr.hotwords import DEFAULT_BOOST
    from asr.transcribe import BATCH_SIZE, OVERLAP_SECONDS, WINDOW_SECONDS
    from asr.vad import DEFAULT_METHOD as DEFAULT_VAD_METHOD
    from asr.vad import METHODS as VAD_METHODS

    # No argparse defaults: an option left out takes the model folder's decoding.yaml, else DecodingOptions'.
    defaults = DecodingOptions()
    parser.add_argument("--decoder", choices=DECODERS,
                        help=f"CTC decoder (default: the model folder's, e.g. beam_lm with its LM; else "
                             f"{defaults.decoder}); --decoder greedy opts out of a shipped LM")
    parser.add_argument("--beam-width", type=int, help=f"beam width for beam decoders (default {defaults.beam_width})")
    parser.add_argument("--token-beam", type=int,
                        help=f"beam decoders: the most probable classes tried at each frame (default: the model's, "
                             f"else {defaults.token_beam}; larger is slower)")
    parser.add_argument("--lm", type=Path,
                        help="ARPA word n-gram; implies --decoder beam_lm (see `asr lm`)")
    parser.add_argument("--alpha", type=float, help=f"LM weight (default: the model's, else {defaults.alpha})")
    parser.add_argument("--beta", type=float, help=f"word insertion bonus (default: the model's, else {defaults.beta})")
    parser.add_argument("--vocabulary", choices=VOCABULARIES,
                        help=f"beam_lm: open lets any spelling out, closed only the LM's words (default: the "
                             f"model's, else {defaults.vocabulary})")
    parser.add_argument("--unk-offset", type=float,
                        help=f"beam_lm: nats added for each word outside the LM's vocabulary, <= 0 (default: the "
                             f"model's, else {defaults.unk_offset:g}: open vocabulary)")
    parser.add_argument("--hotwords", type=Path, metavar="FILE",
                        help=f"beam decoders: bias the search towards the words in FILE, one a line, each optionally "
                             f"followed by its boost in nats (default {DEFAULT_BOOST:g}); # starts a comment. A word "
                             f"the LM lacks becomes spellable in the closed vocabulary")
    parser.add_argument("--boost", action="append", metavar="WORD[:WEIGHT]",
                        help=f"beam decoders: bias the search towards WORD by WEIGHT nats (default {DEFAULT_BOOST:g}); "
                             f"repeatable, and over --hotwords for a word in both")
    parser.add_argument("--raw-confidence", action="store_true",
                        help="word confidences without the calibration in the model folder's decoding.yaml")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"windows per batch (default {BATCH_SIZE})")
    parser.add_argument("--window", type=float, default=WINDOW_SECONDS,
                        help=f"seconds of audio decoded at once (default {WINDOW_SECONDS:g})")
    parser.add_argument("--overlap", type=float, default=OVERLAP_SECONDS,
                        help=f"seconds shared by neighbouring windows (default {OVERLAP_SECONDS:g})")
    parser.add_argument("--vad", choices=VAD_METHODS,
                        help=f"voice activity detection: only speech is decoded, so silence and noise give no "
                             f"words and long files are cut at pauses (default: the model folder's vad.yaml, else "
                             f"{DEFAULT_VAD_METHOD}; webrtc: WebRTC's VAD, worse on steady noise; off: decode all "
                             f"audio)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: in this process; ray: Ray Data actors (extra 'ray'), same outputs")
    parser.add_argument("--address", help="with --engine ray: the Ray cluster to join (default: start a local one)")
    parser.add_argument("--actors", type=int, help="with --engine ray: model replicas (default: CPUs / 2)")


def decoding_options(args: argparse.Namespace, model_defaults):
    """The model's decoding defaults with the options given on the command line put over them."""
    from dataclasses import replace

    given = {"decoder": args.decoder, "beam_width": args.beam_width, "token_beam": args.token_beam,
             "alpha": args.alpha, "beta": args.beta, "vocabulary": args.vocabulary, "unk_offset": args.unk_offset,
             "lm_path": str(args.lm) if args.lm else None}
    if args.lm and not args.decoder:
        given["decoder"] = "beam_lm"
    if getattr(args, "raw_confidence", False):
        given["confidence_temperature"], given["confidence_bias"] = 1.0, 0.0
    hotwords = _hotwords(args)
    if hotwords:  # added to the model's own, a word in both taking the boost given here
        given["hotwords"] = {**dict(model_defaults.hotwords), **hotwords}
        if not args.decoder and model_defaults.decoder == "greedy" and not args.lm:
            given["decoder"] = "beam"  # as --lm implies beam_lm: the best path has nothing to bias
    elif args.decoder == "greedy":
        given["hotwords"] = ()  # opting out of the model's search opts out of its hotwords too
    return replace(model_defaults, **{k: v for k, v in given.items() if v is not None})


def _hotwords(args: argparse.Namespace) -> dict[str, float]:
    """--hotwords FILE, then each --boost over it: normalised word -> boost (empty when neither is given)."""
    from asr.hotwords import HotwordError, parse_boost, read_hotword_file

    try:
        words = read_hotword_file(args.hotwords) if getattr(args, "hotwords", None) else {}
    except HotwordError as error:
        raise UsageError(f"--hotwords: {error}") from None
    for text in getattr(args, "boost", None) or []:
        try:
            word, boost = parse_boost(text)
        except HotwordError as error:
            raise UsageError(f"--boost {text!r}: {error}") from None
        words[word] = boost
    return words


def _transcribe_to(args: argparse.Namespace, sources: list, out: Path | None, fmt: str,
                   relative_paths: bool = False):
    """Load the model and decoder named by the arguments, transcribe `sources` (paths and `AudioSegment`s) and
    write each row as it comes.

    Returns (the summary, the model's config).
    """
    from tqdm import tqdm

    from asr.decoders import make_decoder
    from asr.decoding import DecoderError
    from asr.outputs import OutputError, OutputWriter
    from asr.ray_engine import RayUnavailable, transcribe_with_ray
    from asr.recognizer import ModelError, load_model
    from asr.transcribe import Summary, TranscribeOptions, source_key, transcribe
    from asr.vad import VadError

    min_confidence = getattr(args, "min_confidence", None)
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {min_confidence}")
    if min_confidence is not None and fmt != "jsonl":
        raise UsageError(f"--min-confidence marks words in jsonl output; the output format here is {fmt}")
    try:
        model = load_model(args.model)
        vad = dataclasses.replace(model.vad, method=args.vad) if args.vad else model.vad  # the model folder's settings
        options = TranscribeOptions(args.batch_size, args.window, args.overlap, vad)
        decoding = decoding_options(args, model.decoding)
        decoder = make_decoder(model.config.alphabet(), decoding)
        writer = OutputWriter(out, fmt, [source_key(source) for source in sources], resume=args.resume,
                              min_confidence=min_confidence, relative_paths=relative_paths)
    except (ModelError, DecoderError, OutputError, VadError) as error:
        raise UsageError(error) from None
    except ValueError as error:  # TranscribeOptions: window, overlap, batch size
        raise UsageError(f"--window/--overlap/--batch-size: {error}") from None
    if args.engine == "ray" and not all(isinstance(source, str) for source in sources):
        raise UsageError("--engine ray transcribes whole files: a manifest with segments (rows with an offset) "
                         "runs with the default engine")
    todo = [source for source in sources if not writer.is_done(source_key(source))]
    summary = Summary(skipped=len(sources) - len(todo))
    start = time.perf_counter()
    try:
        if args.engine == "ray":
            rows = transcribe_with_ray(todo, args.model, decoding, options, address=args.address, actors=args.actors)
        else:
            rows = (result.row() for result in transcribe(todo, model, decoder, options, progress=not args.quiet))
        for row in rows:
            writer.write(row)
            summary.add(row)
            if "error" in row:
                tqdm.write(f"error: {row['error']}", file=sys.stderr)  # keeps a progress bar intact
    except RayUnavailable as error:
        raise UsageError(error) from None
    finally:
        writer.close()
    summary.wall_seconds = time.perf_counter() - start
    print(summary.describe(), file=sys.stderr)
    return summary, model.config


def _run_transcribe(args: argparse.Namespace) -> int:
    from asr.outputs import FORMATS
    from asr.transcribe import expand_inputs

    suffix = args.out.suffix.lstrip(".").lower() if args.out else ""  # x.TextGrid: textgrid
    fmt = args.format or (suffix if suffix in FORMATS else "txt")
    try:
        paths = expand_inputs(args.inputs)
    except ValueError as error:
        raise UsageError(error) from None
    summary, _ = _transcribe_to(args, paths, args.out, fmt)
    return EXIT_PARTIAL if summary.failed else EXIT_OK


def add_evaluate(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="transcribe a manifest and write a WER/CER report",
        description="Transcribe every row of MANIFEST (as `asr transcribe` would) into REPORT_DIR/transcripts.jsonl "
                    "and score it against the manifest's text (as `asr score` would): report.json, report.md, "
                    "report.html in REPORT_DIR. Every row is scored; the report counts the references the "
                    "model cannot emit even in principle, and measures how well word confidences predict "
                    "errors (AUROC, ECE, reliability diagram).")
    parser.add_argument("--manifest", type=Path, required=True, help="reference manifest with audio and text")
    parser.add_argument("--model", type=Path, help="run directory, .keras file or exported SavedModel "
                                                    "(default: the bundled model)")
    parser.add_argument("--report", type=Path, required=True, help="folder for transcripts and reports")
    parser.add_argument("--resume", action="store_true", help="keep transcripts already in REPORT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_decoding_arguments(parser)
    _add_report_options(parser)
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from asr.data import ManifestError, ValidationRules, read_manifest
    from asr.transcribe import manifest_sources

    try:
        sources = manifest_sources(read_manifest(args.manifest))
    except ManifestError as error:
        raise UsageError(error) from None
    if not sources:
        raise UsageError(f"{args.manifest}: no rows with audio_filepath to transcribe")
    args.report.mkdir(parents=True, exist_ok=True)
    transcripts = args.report / "transcripts.jsonl"
    _, config = _transcribe_to(args, sources, transcripts, "jsonl", relative_paths=True)
    args.ref, args.hyp = str(args.manifest), str(transcripts)
    return _run_score(args, ValidationRules.for_model(config, purpose="eval"))


def add_score(commands) -> None:
    parser = commands.add_parser(
        "score", help="score transcripts against a reference manifest (WER/CER report)",
        description="Match hypothesis rows to reference rows by audio_filepath (or utterance id, with sclite trn "
                    "files), normalise both sides the same "
                    "way, and write REPORT_DIR/report.json, report.md and report.html (WER, CER, bootstrap "
                    "confidence intervals, error analysis). Unmatched and failed rows are listed (exit 1).")
    parser.add_argument("--ref", required=True, metavar="MANIFEST.jsonl|REF.trn",
                        help="reference manifest (JSONL rows with 'audio_filepath' and 'text'), or an sclite trn "
                             "file (.trn: 'text (utterance_id)' per line)")
    parser.add_argument("--hyp", required=True, metavar="TRANSCRIPTS.jsonl|HYP.trn",
                        help="hypotheses from `asr transcribe` (rows with 'audio_filepath' and 'text', "
                             "or 'error' for a failed input; relative paths resolve against its folder), or a trn "
                             "file. With a trn file on either side rows are matched by utterance id, a JSONL "
                             "row's being its audio file's stem")
    parser.add_argument("--report", required=True, metavar="REPORT_DIR",
                        help="folder for report.json, report.md and report.html (created if missing)")
    parser.add_argument("--config", metavar="CONFIG.yaml",
                        help="the model's config.yaml: count the references it cannot emit even in principle "
                             "(characters outside its alphabet, labels too long for CTC); without it the count "
                             "is reported as unknown")
    _add_report_options(parser)
    parser.set_defaults(handler=_run_score)


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    """The scoring options `asr score` and `asr evaluate` share."""
    from asr import bootstrap, scoring

    parser.add_argument("--normalizer", choices=scoring.NORMALIZERS, default="default",
                        help="text normalisation of both sides before scoring: 'default' lowercases, spells "
                             "out numerals and drops punctuation (as in training); 'none' only collapses "
                             "whitespace (default: %(default)s)")
    parser.add_argument("--compare", metavar="OTHER_REPORT.json",
                        help="report.json of another system: adds a side-by-side comparison on the common "
                             "utterances with a paired bootstrap test of the WER difference")
    parser.add_argument("--bootstrap", type=non_negative_int, default=bootstrap.DEFAULT_BOOTSTRAP, metavar="N",
                        help=f"bootstrap resamples for the {round(100 * bootstrap.CONFIDENCE)}%% confidence intervals "
                             "and the paired test (0 disables them; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=bootstrap.DEFAULT_SEED,
                        help="random seed of the bootstrap (default: %(default)s)")
    parser.add_argument("--write-trn", type=Path, metavar="DIR",
                        help="also write DIR/ref.trn and DIR/hyp.trn (sclite's trn format): both sides as scored, "
                             "normalised, a missing or failed hypothesis as an empty line, so that `sclite -r "
                             "DIR/ref.trn trn -h DIR/hyp.trn trn -i rm` counts the same errors")


def _run_score(args: argparse.Namespace, rules=None) -> int:
    """0: scored every row; 1: report written but some rows were unmatched or failed; 2: unusable input.

    `rules` (from `asr evaluate`, or `--config`) are the model's: the report counts references it cannot emit.
    """
    from asr.config import ConfigError, load_config
    from asr.data import ValidationRules
    from asr.report import ReportError, score_files, summary_text

    try:
        if rules is None and getattr(args, "config", None):
            rules = ValidationRules.for_model(load_config(args.config))
        result, comparison, paths = score_files(args.ref, args.hyp, args.report, args.normalizer, args.compare,
                                                args.bootstrap, args.seed, rules, args.write_trn)
    except ConfigError as error:
        raise UsageError(f"--config: {error}") from None
    except ReportError as error:
        raise UsageError(error) from None
    print(summary_text(result, comparison, paths))
    return EXIT_OK if result.complete else EXIT_PARTIAL
