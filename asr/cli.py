"""The `asr` command: a thin argparse layer over the library. Exit 0 all done, 1 some inputs failed, 2 usage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


class UsageError(Exception):
    """Bad arguments or unusable inputs named by the user: reported in one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Bidirectional LSTM + CTC speech recognition.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_prepare(commands)
    _add_split(commands)
    _add_train(commands)
    _add_score(commands)
    return parser


def _version() -> str:
    from asr import __version__

    return __version__


def _add_prepare(commands) -> None:
    from asr.corpora import IMPORTERS

    parser = commands.add_parser(
        "prepare", help="import a corpus into a validated manifest",
        description="Import a corpus into a NeMo-style JSONL manifest. Rows that cannot be used (missing or "
                    "unreadable audio, empty text, characters outside the alphabet, a label too long for its "
                    "audio at the given subsampling) go to the rejects file with their reason.")
    parser.add_argument("format", choices=sorted(IMPORTERS), help="layout of SOURCE")
    parser.add_argument("source", type=Path, help="corpus folder (or its TSV/metadata file)")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (JSONL)")
    parser.add_argument("--rejects", type=Path, help="rejected rows with reasons (default: OUT.rejects.jsonl)")
    parser.add_argument("--config", type=Path,
                        help="training config whose alphabet, front end and subsampling the data must fit")
    parser.add_argument("--sample-rate", type=int, help="model sample rate in Hz (default 16000, or the config's)")
    parser.add_argument("--subsampling", type=int, help="model time subsampling factor (default 2, or the config's)")
    parser.add_argument("--alphabet", help="characters the model emits (default: space, a-z, apostrophe)")
    parser.add_argument("--workers", type=int, default=8, help="parallel file checks (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from asr.corpora import CorpusError, prepare

    rules = _validation_rules(args)
    try:
        summary = prepare(args.format, args.source, args.out, args.rejects, rules, args.workers,
                          progress=not args.quiet)
    except CorpusError as error:
        raise UsageError(error) from None
    rejects = args.rejects or args.out.with_name(args.out.stem + ".rejects.jsonl")
    print(f"{args.out}: {summary.describe()}")
    if summary.rejected:
        print(f"rejected rows with reasons: {rejects}")
    return EXIT_PARTIAL if summary.rejected else EXIT_OK


def _validation_rules(args: argparse.Namespace):
    from asr.data import DEFAULT_SUBSAMPLING, ValidationRules
    from asr.features import FeatureConfig
    from asr.text import Alphabet

    features, alphabet, subsampling = FeatureConfig(), Alphabet(), DEFAULT_SUBSAMPLING
    if args.config:
        from asr.config import ConfigError, load_config

        try:
            config = load_config(args.config)
        except ConfigError as error:
            raise UsageError(error) from None
        features, alphabet, subsampling = config.features, config.alphabet(), config.model.subsampling
    if args.sample_rate:
        features = FeatureConfig(**{**vars(features), "sample_rate": args.sample_rate})
    if args.alphabet:
        alphabet = Alphabet(args.alphabet)
    if args.subsampling:
        if not 1 <= args.subsampling <= 8:
            raise UsageError(f"--subsampling must be between 1 and 8, got {args.subsampling}")
        subsampling = args.subsampling
    return ValidationRules(alphabet, features, subsampling)


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
    fractions = {"train": 1 - args.dev - args.test, "dev": args.dev, "test": args.test}
    for name, part in speaker_disjoint_split(rows, fractions, args.seed).items():
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
                    "Ctrl-C (or SIGTERM) saves a checkpoint; --resume continues from it.")
    parser.add_argument("--config", type=Path, help="YAML config (see configs/); not with --resume")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a checkpoint every N steps (default 50)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. model.units=128 train.epochs=3")
    parser.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from asr.config import ConfigError
    from asr.data import ManifestError
    from asr.pipeline import PipelineError
    from asr.train import TrainingError, load_run_config, train

    if args.out is None:
        if args.config is None:
            raise UsageError("give --config (to start) or --out (to resume)")
        args.out = Path("runs") / args.config.stem
    try:
        config = load_run_config(args.out, args.config, args.overrides, args.resume)
        state = train(config, args.out, resume=args.resume, verbose=0 if args.quiet else 1,
                      checkpoint_every=args.checkpoint_every)
    except (ConfigError, ManifestError, PipelineError, TrainingError) as error:
        raise UsageError(error) from None
    best = f", best dev WER {state.best_wer:.2%} at epoch {state.best_epoch}" if state.best_wer is not None else ""
    reason = f" ({state.stop_reason})" if state.stop_reason else ""
    print(f"{args.out}: trained {state.epoch} epochs{best}{reason}; model: {args.out / 'model.keras'}")
    return EXIT_OK


def _add_score(commands) -> None:
    from asr.report import add_score_arguments, run_score

    parser = commands.add_parser(
        "score", help="score transcripts against a reference manifest (WER/CER report)",
        description="Match hypothesis rows to reference rows by audio_filepath, normalise both sides the same "
                    "way, and write REPORT_DIR/report.json, report.md and report.html (WER, CER, bootstrap "
                    "confidence intervals, error analysis). Unmatched and failed rows are listed (exit 1).")
    add_score_arguments(parser)
    parser.set_defaults(handler=run_score)


if __name__ == "__main__":
    sys.exit(main())
