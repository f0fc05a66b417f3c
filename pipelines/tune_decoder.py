"""Grid-search the beam_lm decoder's vocabulary, LM weight, word bonus, unseen-word offset and beams on a dev set.

    python pipelines/tune_decoder.py --model RUN_DIR_OR_MODEL --manifest DEV.jsonl --lm lm.arpa \
        [--vocabulary open closed] [--alpha 0 0.5 1.0] [--beta 0 1 2] [--unk-offset 0 -5] [--beam-width 16 32] \
        [--token-beam 4 16] [--out results.json] [--write-decoding FOLDER]

Each setting transcribes the manifest's files as `asr transcribe` does (20 s windows, the model folder's voice
activity detector and vad.yaml), so the chosen setting is tuned for the path it will serve; the model runs
once per distinct speech segment and every setting decodes the same logits. WER (jiwer, references
normalised as training targets are) is printed for greedy, for beam search without the LM at each width,
and for each (beam width, token beam, vocabulary, alpha, beta, unk offset: open vocabulary only); the best
beam_lm setting is printed last.
`--write-decoding FOLDER` stores it as that model folder's decoding.yaml (the LM must lie in the folder), so
`asr transcribe` and `asr evaluate` use it by default.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr.data import ManifestError, read_manifest
from asr.decoders import make_decoder
from asr.decoding import DEFAULT_UNK_OFFSET, TOKEN_BEAM, VOCABULARIES, DecodingOptions
from asr.scoring import error_rate
from asr.text import Alphabet, normalize_text

DEFAULT_ALPHAS = (0.0, 0.5, 1.0)
DEFAULT_BETAS = (0.0, 1.0, 2.0)
DEFAULT_BEAM_WIDTHS = (32,)
DEFAULT_TOKEN_BEAMS = (TOKEN_BEAM,)
DEFAULT_UNK_OFFSETS = (DEFAULT_UNK_OFFSET,)
DEFAULT_VOCABULARIES = ("open",)

Transcriber = Callable[[object], list[str]]  # a decoder -> one hypothesis text per manifest row, in order


@dataclass
class Setting:
    decoder: str
    beam_width: int | None
    alpha: float | None
    beta: float | None
    wer: float
    seconds: float  # decoding time over the whole set
    token_beam: int | None = None  # beam_lm: the most probable classes tried at each frame
    unk_offset: float | None = None  # beam_lm: nats added for each word outside the LM's vocabulary
    vocabulary: str | None = None  # beam_lm: open (any spelling) or closed (the LM's words)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, words=True)


def evaluate(transcriber: Transcriber, decoder, references: Sequence[str]) -> tuple[float, float]:
    start = time.perf_counter()
    hypotheses = transcriber(decoder)
    return word_error_rate(references, hypotheses), time.perf_counter() - start


def tune(transcriber: Transcriber, references: Sequence[str], alphabet: Alphabet, lm_path: str | Path,
         alphas: Sequence[float] = DEFAULT_ALPHAS, betas: Sequence[float] = DEFAULT_BETAS,
         beam_widths: Sequence[int] = DEFAULT_BEAM_WIDTHS,
         token_beams: Sequence[int] = DEFAULT_TOKEN_BEAMS,
         unk_offsets: Sequence[float] = DEFAULT_UNK_OFFSETS,
         vocabularies: Sequence[str] = DEFAULT_VOCABULARIES) -> list[Setting]:
    """WER of greedy, of beam per width, and of beam_lm per (width, token beam, vocabulary, alpha, beta, unk
    offset); a closed vocabulary has no unseen words, so it is tried once per (alpha, beta), with offset 0."""
    references = [normalize_text(r) for r in references]
    results = [Setting("greedy", None, None, None, *evaluate(transcriber, make_decoder(alphabet), references))]
    for width in beam_widths:
        decoder = make_decoder(alphabet, DecodingOptions("beam", beam_width=width))
        results.append(Setting("beam", width, None, None, *evaluate(transcriber, decoder, references)))
    grid = dict.fromkeys((width, token_beam, vocabulary, alpha, beta, unk_offset if vocabulary == "open" else 0.0)
                         for width, token_beam, vocabulary, alpha, beta, unk_offset
                         in itertools.product(beam_widths, token_beams, vocabularies, alphas, betas, unk_offsets))
    for width, token_beam, vocabulary, alpha, beta, unk_offset in grid:  # in order, each setting once
        options = DecodingOptions("beam_lm", beam_width=width, token_beam=token_beam, lm_path=str(lm_path),
                                  alpha=alpha, beta=beta, unk_offset=unk_offset, vocabulary=vocabulary)
        decoder = make_decoder(alphabet, options)
        results.append(Setting("beam_lm", width, alpha, beta, *evaluate(transcriber, decoder, references),
                               token_beam=token_beam, unk_offset=unk_offset, vocabulary=vocabulary))
    return results


def logits_transcriber(logits: Sequence[np.ndarray], frame_seconds: float) -> Transcriber:
    """Decode precomputed per-utterance logits (whole utterances)."""
    return lambda decoder: [decoder.decode(row, frame_seconds).text for row in logits]


class CachedLogits:
    """A `Recognizer` whose logits are computed once per distinct speech segment, so that many decoder
    settings can each transcribe the same files as `asr transcribe` does for the cost of one model run."""

    def __init__(self, model):
        self.model = model
        self.cache: dict[bytes, np.ndarray] = {}
        self.model_calls = 0

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def logits(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        keys = [hashlib.blake2b(w.tobytes(), digest_size=16).digest() for w in waveforms]
        missing = {key: w for key, w in zip(keys, waveforms, strict=True) if key not in self.cache}
        if missing:
            self.model_calls += 1
            self.cache.update(zip(missing, self.model.logits(list(missing.values())), strict=True))
        return [self.cache[key] for key in keys]


def model_transcriber(cached: CachedLogits, paths: Sequence[str]) -> Transcriber:
    """Transcribe the files as `asr transcribe` does (windows, the model's VAD); a file that fails is an error."""
    from asr.transcribe import transcribe

    def transcribe_all(decoder) -> list[str]:
        results = {r.path: r for r in transcribe(list(paths), cached, decoder, progress=False)}
        failed = [r for r in results.values() if r.error]
        if failed:
            raise ManifestError(f"{len(failed)} file(s) could not be transcribed, e.g. {failed[0].error}")
        return [results[path].text for path in paths]

    return transcribe_all


def best_setting(results: Sequence[Setting]) -> Setting:
    """Lowest WER among the beam_lm settings; ties go to the smaller beams (faster), then to the milder
    unseen-word offset (closer to an open vocabulary), then the earlier row."""
    candidates = [r for r in results if r.decoder == "beam_lm"] or list(results)
    return min(candidates, key=lambda r: (r.wer, r.beam_width or 0, r.token_beam or 0, -(r.unk_offset or 0.0)))


def load_transcriber(model_path: Path, manifest: Path) -> tuple[Transcriber, list[str], Alphabet, float]:
    """The manifest's files through the model as `asr transcribe` runs them (the model runs here, so that
    settings are timed on decoding alone), reference texts, alphabet, seconds of audio."""
    from asr.recognizer import load_model

    rows = read_manifest(manifest)
    missing = [i for i, row in enumerate(rows, 1) if not row.audio_filepath]
    if missing:
        raise ManifestError(f"{manifest}: rows {missing[:5]} have no audio_filepath")
    model = load_model(model_path)
    transcriber = model_transcriber(CachedLogits(model), [row.audio_filepath for row in rows])
    transcriber(make_decoder(model.config.alphabet()))
    return transcriber, [row.text for row in rows], model.config.alphabet(), sum(row.duration for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="run directory or .keras file (config beside)")
    parser.add_argument("--manifest", type=Path, required=True, help="dev manifest with audio and text")
    parser.add_argument("--lm", type=Path, required=True, help="ARPA language model (pipelines/build_lm.py)")
    parser.add_argument("--alpha", type=float, nargs="+", default=list(DEFAULT_ALPHAS), help="LM weights")
    parser.add_argument("--beta", type=float, nargs="+", default=list(DEFAULT_BETAS), help="word insertion bonuses")
    parser.add_argument("--beam-width", type=int, nargs="+", default=list(DEFAULT_BEAM_WIDTHS), help="beam widths")
    parser.add_argument("--token-beam", type=int, nargs="+", default=list(DEFAULT_TOKEN_BEAMS),
                        help="beam_lm: the most probable classes tried at each frame (slower when larger)")
    parser.add_argument("--vocabulary", nargs="+", choices=VOCABULARIES, default=list(DEFAULT_VOCABULARIES),
                        help="beam_lm: open (any spelling) and/or closed (only the LM's words)")
    parser.add_argument("--unk-offset", type=float, nargs="+", default=list(DEFAULT_UNK_OFFSETS),
                        help="beam_lm: nats added for each word outside the LM's vocabulary (<= 0)")
    parser.add_argument("--out", type=Path, help="also write every setting and the best as JSON")
    parser.add_argument("--write-decoding", type=Path, metavar="FOLDER",
                        help="store the best setting as FOLDER/decoding.yaml (the model folder holding the LM)")
    args = parser.parse_args(argv)
    try:
        make_decoder(Alphabet(), DecodingOptions("beam_lm", lm_path=args.lm))  # a bad LM fails before the model runs
        transcriber, references, alphabet, audio_seconds = load_transcriber(args.model, args.manifest)
        results = tune(transcriber, references, alphabet, args.lm, args.alpha, args.beta, args.beam_width,
                       args.token_beam, args.unk_offset, args.vocabulary)
    except ValueError as error:  # DecoderError, ManifestError, ModelError, AudioError: bad inputs, not bugs
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(references)} utterances, {audio_seconds:.1f} s of audio (s/s audio: reading, VAD and decoding)")
    print(f"{'decoder':8} {'width':>5} {'tokens':>6} {'vocab':>6} {'alpha':>6} {'beta':>6} {'unk':>6} {'WER':>7} "
          f"{'s/s audio':>9}")
    for r in results:
        cells = [f"{v:>{w}}" if v is not None else " " * w
                 for v, w in ((r.beam_width, 5), (r.token_beam, 6), (r.vocabulary, 6), (r.alpha, 6), (r.beta, 6),
                              (r.unk_offset, 6))]
        print(f"{r.decoder:8} {' '.join(cells)} {r.wer:7.2%} {r.seconds / max(audio_seconds, 1e-9):9.4f}")
    best = best_setting(results)
    print(f"best: --decoder beam_lm --beam-width {best.beam_width} --token-beam {best.token_beam} "
          f"--vocabulary {best.vocabulary} --alpha {best.alpha} --beta {best.beta} --unk-offset {best.unk_offset} "
          f"(WER {best.wer:.2%})")
    if args.out:
        from asr.utils import atomic_write

        with atomic_write(args.out) as handle:
            json.dump({"settings": [asdict(r) for r in results], "best": asdict(best)}, handle, indent=2)
    if args.write_decoding:
        from asr.model_folder import ModelError, write_decoding_options

        options = DecodingOptions("beam_lm", beam_width=best.beam_width, token_beam=best.token_beam,
                                  lm_path=str(args.lm), alpha=best.alpha, beta=best.beta,
                                  unk_offset=best.unk_offset, vocabulary=best.vocabulary)
        try:
            print(f"wrote {write_decoding_options(args.write_decoding, options)}")
        except ModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
