"""The `asr` command: a thin argparse layer over the library. Exit 0 all done, 1 some inputs failed, 2 usage."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr.cli_common import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UsageError, non_negative_int
from asr.cli_decoding import add_evaluate, add_score, add_transcribe

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "UsageError", "build_parser", "main"]


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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Bidirectional LSTM + CTC speech recognition.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    adders = {"prepare": _add_prepare, "split": _add_split, "train": _add_train, "transcribe": add_transcribe,
              "evaluate": add_evaluate, "score": add_score, "lm": _add_lm, "export": _add_export,
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
    parser.add_argument("--background-words", type=non_negative_int, default=0, metavar="N",
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
