"""The `asr` command: a thin argparse layer over the library. Exit 0 all done, 1 some inputs failed, 2 usage."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None, only: str | None = None) -> int:
    """`only`: build that command's parser alone (pipelines/build_lm.py: `asr lm` without the imports of the
    other commands' options, some of which load TensorFlow)."""
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"asr {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `asr transcribe … | head`: stop quietly, as Python's docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PARTIAL


class UsageError(Exception):
    """Bad arguments or unusable inputs named by the user: reported in one line, exit status 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Bidirectional LSTM + CTC speech recognition.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    adders = {"prepare": _add_prepare, "split": _add_split, "train": _add_train, "transcribe": _add_transcribe,
              "evaluate": _add_evaluate, "score": _add_score, "lm": _add_lm, "export": _add_export,
              "export-data": _add_export_data}
    for name, add in adders.items():
        if only in (None, name):
            add(commands)
    return parser


def _version() -> str:
    from asr import __version__

    return __version__


def _add_prepare(commands) -> None:
    from asr.config import SUBSAMPLING_FACTORS, ModelConfig
    from asr.corpora import AN4_FORMS, AN4_SUBSETS, IMPORTERS
    from asr.data import PURPOSES

    parser = commands.add_parser(
        "prepare", help="import a corpus into a validated manifest",
        description="Import a corpus into a NeMo-style JSONL manifest. Rows that cannot be used (missing or "
                    "unreadable audio, empty text, characters outside the alphabet, a label too long for its "
                    "audio at the given subsampling) go to the rejects file with their reason. With --purpose "
                    "eval only unreadable audio and empty text are rejected: a test set keeps every reference, "
                    "and the rows the model cannot emit are kept and counted. Format an4 reads "
                    "the Sphinx layout (etc/an4_SUBSET.transcription and .fileids, with feat/ID.mfc features "
                    "or wav/ID.wav|.flac|.sph waveforms) or a waveform folder with a transcripts.tsv. Format "
                    "kaldi reads a Kaldi data directory (wav.scp with file paths, text, utt2spk; optionally "
                    "segments, each a row with the offset and duration of its slice of a wav.scp recording, and "
                    "spk2gender, kept as each row's gender). Format lhotse reads lhotse manifests (JSONL or "
                    ".jsonl.gz; lhotse itself is not needed): a cuts file, or a recordings file with its "
                    "supervisions file beside it (or a folder holding the pair), one row per supervision, the "
                    "slice of its recording's audio file. Exit status: 0 "
                    "all rows kept, 1 some rejected (reported; the manifest holds the rest), 2 nothing written.")
    parser.add_argument("format", choices=sorted(IMPORTERS), help="layout of SOURCE")
    parser.add_argument("source", type=Path, help="corpus folder (or its TSV/metadata file)")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (JSONL)")
    parser.add_argument("--rejects", type=Path, help="rejected rows with reasons (default: OUT.rejects.jsonl)")
    parser.add_argument("--config", type=Path,
                        help="training config whose alphabet, front end and subsampling the data must fit")
    parser.add_argument("--sample-rate", type=int, help="model sample rate in Hz (default 16000, or the config's)")
    parser.add_argument("--subsampling", type=int, choices=SUBSAMPLING_FACTORS,
                        help=f"model time subsampling factor (default {ModelConfig.subsampling}, or the config's)")
    parser.add_argument("--alphabet", help="characters the model emits (default: space, a-z, apostrophe)")
    parser.add_argument("--purpose", choices=PURPOSES, default="train",
                        help="train: reject rows the model cannot learn from (outside the alphabet, label too "
                             "long for CTC); eval: keep them, so `asr evaluate` scores every reference "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=8, help="parallel file checks (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--rejects-ok", action="store_true",
                        help="exit 0 when some rows were rejected (still reported): for scripts that expect it")
    parser.add_argument("--subset", choices=AN4_SUBSETS,
                        help="an4 only: which list to read, etc/an4_SUBSET.* (default train)")
    parser.add_argument("--an4-form", choices=AN4_FORMS,
                        help="an4 only: read Sphinx MFCC features (feat/ID.mfc, 100 frames/s) or waveforms "
                             "(wav/ID.*, through the model's front end); auto (default): waveforms when every "
                             "listed file id has one, else features")
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from asr.corpora import CorpusError, prepare

    rules = _validation_rules(args)
    try:
        summary = prepare(args.format, args.source, args.out, args.rejects, rules, args.workers,
                          progress=not args.quiet, subset=args.subset, an4_form=args.an4_form)
    except CorpusError as error:
        raise UsageError(error) from None
    rejects = args.rejects or args.out.with_name(args.out.stem + ".rejects.jsonl")
    print(f"{args.out}: {summary.describe()}")
    if summary.rejected:
        print(f"rejected rows with reasons: {rejects}")
    return EXIT_PARTIAL if summary.rejected and not args.rejects_ok else EXIT_OK


def _validation_rules(args: argparse.Namespace):
    from asr.config import ConfigError, load_config
    from asr.data import ValidationRules
    from asr.features import FeatureConfig
    from asr.text import Alphabet

    try:
        config = load_config(args.config)  # without --config, the defaults a training config starts from
    except ConfigError as error:
        raise UsageError(error) from None
    features, alphabet, subsampling = config.features, config.alphabet(), config.model.subsampling
    if args.sample_rate:
        features = FeatureConfig(**{**vars(features), "sample_rate": args.sample_rate})
    if args.alphabet:
        alphabet = Alphabet(args.alphabet)
    if args.subsampling:
        subsampling = args.subsampling
    return ValidationRules(alphabet, features, subsampling, purpose=getattr(args, "purpose", "train"))


def _add_split(commands) -> None:
    parser = commands.add_parser(
        "split", help="split a manifest into speaker-disjoint train/dev/test manifests",
        description="Assign whole speakers to splits so that no speaker is in two splits; fractions are of "
                    "audio duration. Writes PREFIX.train.jsonl, PREFIX.dev.jsonl, PREFIX.test.jsonl.")
    parser.add_argument("manifest", type=Path, help="manifest to split")
    parser.add_argument("--out-prefix", type=Path, help="output prefix (default: the manifest path without .jsonl)")
    parser.add_argument("--dev", type=float, default=0.1, help="fraction for dev (default 0.1)")
    parser.add_argument("--test", type=float, default=0.1, help="fraction for test (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    parser.add_argument("--dev-speakers", help="comma-separated speakers that make up dev (instead of --dev), "
                                               "e.g. to score two recipes on the same people")
    parser.add_argument("--test-speakers", help="comma-separated speakers that make up test (instead of --test)")
    parser.add_argument("--by-text", action="store_true",
                        help="keep each sentence (normalised text) in one split instead of each speaker: for one "
                             "reader, e.g. LJ Speech, whose test sentences must be unseen")
    parser.set_defaults(handler=_run_split)


def _run_split(args: argparse.Namespace) -> int:
    from asr.data import ManifestError, read_manifest, speaker_disjoint_split, write_manifest

    if not (0 <= args.dev < 1 and 0 <= args.test < 1 and args.dev + args.test < 1):
        raise UsageError(f"--dev and --test must be fractions summing to less than 1, got {args.dev}, {args.test}")
    try:
        rows = read_manifest(args.manifest)
    except ManifestError as error:
        raise UsageError(error) from None
    prefix = args.out_prefix or args.manifest.with_suffix("")
    fixed = {name: set(value.split(",")) for name, value in (("dev", args.dev_speakers), ("test", args.test_speakers))
             if value}
    if fixed:
        for name, speakers in fixed.items():
            missing = speakers - {r.speaker for r in rows}
            if missing:
                raise UsageError(f"--{name}-speakers: not in {args.manifest}: {', '.join(sorted(missing))}")
        shared = fixed.get("dev", set()) & fixed.get("test", set())
        if shared:
            raise UsageError(f"--dev-speakers and --test-speakers share {', '.join(sorted(shared))}")
        chosen = set().union(*fixed.values())
        drawn = {name: share for name, share in (("dev", args.dev), ("test", args.test)) if name not in fixed}
        others = [r for r in rows if r.speaker not in chosen]
        splits = speaker_disjoint_split(others, {"train": 1 - sum(drawn.values()), **drawn}, args.seed)
        for name, speakers in fixed.items():
            splits[name] = [r for r in rows if r.speaker in speakers]
        splits = {name: splits[name] for name in ("train", "dev", "test")}
    elif args.by_text:
        from dataclasses import replace

        from asr.text import normalize_text

        fractions = {"train": 1 - args.dev - args.test, "dev": args.dev, "test": args.test}
        keyed = [replace(row, speaker=f"text:{normalize_text(row.text)}") for row in rows]
        original = {id(key): row for key, row in zip(keyed, rows, strict=True)}
        splits = {name: [original[id(key)] for key in part]
                  for name, part in speaker_disjoint_split(keyed, fractions, args.seed).items()}
    else:
        fractions = {"train": 1 - args.dev - args.test, "dev": args.dev, "test": args.test}
        splits = speaker_disjoint_split(rows, fractions, args.seed)
    for name, part in splits.items():
        path = Path(f"{prefix}.{name}.jsonl")
        write_manifest(path, part)
        speakers = len({r.speaker for r in part})
        print(f"{path}: {len(part)} utterances, {sum(r.duration for r in part) / 60:.1f} min, {speakers} speakers")
    return EXIT_OK


def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train", help="train a BiLSTM-CTC model from a YAML config",
        description="Train the acoustic model. RUN_DIR receives the resolved config, alphabet, atomic "
                    "checkpoints (best and last), log.csv, TensorBoard logs and the final model.keras. "
                    "Ctrl-C (or SIGTERM) saves a checkpoint; --resume continues from it, and so does re-running the "
                    "same command (same --config and overrides) on the same --out.")
    parser.add_argument("--config", type=Path, help="YAML config (see configs/); not with --resume")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="with --resume: train to N epochs in total, re-opening a finished run; the learning-"
                             "rate schedule is stretched to the new end (a cosine restarts warm)")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="adapt a trained model: start from its weights (a model folder such as "
                             "asr/assets/default_model, a run directory or a .keras file); the same as "
                             "train.init_from=MODEL (add train.init_new_output=true for a new alphabet)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a checkpoint every N steps (default 50)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. model.units=128 train.epochs=3")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from asr.config import ConfigError
    from asr.data import ManifestError
    from asr.dataset import PipelineError
    from asr.model_folder import model_file
    from asr.train import TrainingError, continues_run, load_run_config, train

    if args.out is None:
        if args.config is None:
            raise UsageError("give --config (to start) or --out (to resume)")
        args.out = Path("runs") / args.config.stem
    if args.init_from:
        if args.resume:
            raise UsageError("--init-from starts a run; --resume continues one from its own weights")
        args.overrides = [*args.overrides, f"train.init_from={args.init_from}"]
    try:
        config = load_run_config(args.out, args.config, args.overrides, args.resume, args.epochs)
        if not args.resume and continues_run(args.out, config):
            print(f"asr train: {args.out} holds an interrupted run of this config: continuing it (as --resume)",
                  file=sys.stderr)
            args.resume = True
        state = train(config, args.out, resume=args.resume, verbose=0 if args.quiet else 1,
                      checkpoint_every=args.checkpoint_every).state
    except (ConfigError, ManifestError, PipelineError, TrainingError) as error:
        raise UsageError(error) from None
    best = f", best dev WER {state.best_wer:.2%} at epoch {state.best_epoch}" if state.best_wer is not None else ""
    reason = f" ({state.stop_reason})" if state.stop_reason else ""
    print(f"{args.out}: trained {state.epoch} epochs{best}{reason}; model: {model_file(args.out)}")
    return EXIT_OK


def _add_transcribe(commands) -> None:
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


def _add_evaluate(commands) -> None:
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


def _add_score(commands) -> None:
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
    parser.add_argument("--bootstrap", type=_non_negative_int, default=bootstrap.DEFAULT_BOOTSTRAP, metavar="N",
                        help=f"bootstrap resamples for the {round(100 * bootstrap.CONFIDENCE)}%% confidence intervals "
                             "and the paired test (0 disables them; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=bootstrap.DEFAULT_SEED,
                        help="random seed of the bootstrap (default: %(default)s)")
    parser.add_argument("--write-trn", type=Path, metavar="DIR",
                        help="also write DIR/ref.trn and DIR/hyp.trn (sclite's trn format): both sides as scored, "
                             "normalised, a missing or failed hypothesis as an empty line, so that `sclite -r "
                             "DIR/ref.trn trn -h DIR/hyp.trn trn -i rm` counts the same errors")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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


def _add_lm(commands) -> None:
    from asr.lm import DEFAULT_ORDER, MAX_ORDER

    parser = commands.add_parser(
        "lm", help="build a word n-gram language model (ARPA) from transcripts",
        description="Estimate an interpolated Kneser-Ney word n-gram model for `--decoder beam_lm` (`--lm`) from "
                    "text files (one sentence a line) or JSONL manifests (.jsonl/.json: their 'text' fields), the "
                    "sentences of all of them pooled and normalised as training targets are. The ARPA file is "
                    "written atomically. Exit status: 0 written, 2 nothing written.")
    parser.add_argument("sources", type=Path, nargs="+", metavar="TEXT_OR_MANIFEST",
                        help="text file (one sentence a line) or JSONL manifest")
    parser.add_argument("--out", type=Path, required=True, help="ARPA file to write")
    parser.add_argument("--order", type=int, default=DEFAULT_ORDER,
                        help=f"n-gram order, 1 to {MAX_ORDER} (default: %(default)s)")
    parser.add_argument("--background-words", type=_non_negative_int, default=0, metavar="N",
                        help="add the N most common English words (the wordfreq package, extra 'lm') to the "
                             "vocabulary, weighted by frequency, so that a closed-vocabulary search can still write "
                             "a common word the transcripts lack (default 0: none)")
    parser.set_defaults(handler=_run_lm)


def _run_lm(args: argparse.Namespace) -> int:
    from asr.lm import LMError, background_words, build_lm

    try:
        background = background_words(args.background_words) if args.background_words else None
        model = build_lm(args.sources, args.out, args.order, background)
    except LMError as error:
        raise UsageError(error) from None
    except OSError as error:
        raise UsageError(f"{error.filename or args.out}: {error.strerror or error}") from None
    counts = ", ".join(f"{n}-grams: {size}" for n, size in enumerate(model.counts(), 1))
    print(f"wrote {args.out} (order {model.order}; {counts})")
    return EXIT_OK


def _add_export_data(commands) -> None:
    parser = commands.add_parser(
        "export-data", help="write a manifest in another toolkit's layout (a Kaldi data directory)",
        description="Write MANIFEST's rows as a Kaldi data directory OUT (wav.scp, text, utt2spk, spk2utt, sorted "
                    "as Kaldi sorts them; utterance ids SPEAKER-STEM; absolute audio paths): the reverse of "
                    "`asr prepare kaldi`. Files are written atomically.")
    parser.add_argument("format", choices=["kaldi"], help="layout to write")
    parser.add_argument("manifest", type=Path, help="JSONL manifest")
    parser.add_argument("out", type=Path, help="folder to write")
    parser.set_defaults(handler=_run_export_data)


def _run_export_data(args: argparse.Namespace) -> int:
    from asr.data import ManifestError, read_manifest
    from asr.kaldi import KaldiExportError, write_kaldi_dir

    try:
        rows = read_manifest(args.manifest)
        folder = write_kaldi_dir(rows, args.out)
    except (ManifestError, KaldiExportError) as error:
        raise UsageError(f"{args.manifest}: {error}") from None
    print(f"{folder}: {len(rows)} utterances, {len({row.speaker for row in rows})} speakers (Kaldi data directory)")
    return EXIT_OK


def _add_export(commands) -> None:
    from asr.model_folder import EXPORT_FORMATS

    parser = commands.add_parser(
        "export", help="export a trained model as a SavedModel or TFLite file",
        description="SavedModel: takes float32 waveforms (serving_default) or int16 PCM (serve_int16) with their "
                    "lengths and returns logits and output lengths, front end inside; `asr transcribe --model` "
                    "accepts it. TFLite: batch 1, any length, built-in ops only, float32 waveform -> logits.")
    parser.add_argument("--model", type=Path, help="run directory or .keras file (default: the bundled model)")
    parser.add_argument("--format", choices=EXPORT_FORMATS, required=True, help="export format")
    parser.add_argument("--out", type=Path, required=True, help="folder (savedmodel) or file (tflite) to create")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from asr.export import ExportError, export
    from asr.recognizer import ModelError

    try:
        path = export(args.model, args.format, args.out)
    except (ExportError, ModelError) as error:
        raise UsageError(error) from None
    print(f"exported {args.format}: {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
