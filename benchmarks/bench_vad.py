"""Voice activity detection: empty transcripts on generated non-speech, WER on real speech with pauses.

    python benchmarks/bench_vad.py [--model MODEL] [--fsdd work/default/fsdd.test.jsonl]
                                   [--asterisk work/default/asterisk.test.jsonl] [--seeds 3] [--bootstrap 1000]
    python benchmarks/bench_vad.py --settings      # the measurements behind the padding and detection settings
    python benchmarks/bench_vad.py --generated-only   # only the non-speech clips: the fraction with empty text

Systems, all through `asr.transcribe.transcribe` with the model's greedy decoder and 20 s windows:
- no VAD (`--vad off`): every window decoded whole;
- blank posteriors + energy floor: no VAD, but model frames whose band power is under the VAD's absolute
  floor are forced to blank before decoding (the model's own blank posteriors decide everywhere else);
- webrtcvad, aggressiveness 0 and 3 (the default of `--vad webrtc`), with the same absolute floor;
- voicing: periodicity + absolute floor + noise-floor margin (`--vad voicing`, the default).

Generated clips: digital silence, white and pink noise at -60/-40/-20/-10 dBFS, 50 and 60 Hz hum (three
harmonics, -20 dBFS) and clicks, 1, 2 and 3 s, `--seeds` noise seeds each: the fraction with empty text.
Real speech: the FSDD and Asterisk test utterances (from `asr prepare` + `asr split`, as in
pipelines/default_model.sh) as they are, and concatenated (10 FSDD or 6 Asterisk utterances a file) with
gaps of 1-2 s, alternately digital silence and white noise 30 dB below the file's speech: WER with 95%
bootstrap intervals over files, and the paired difference to no VAD (asr.scoring).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.audio import load_audio, write_audio
from asr.bootstrap import DEFAULT_SEED, paired_bootstrap
from asr.data import ManifestError, Utterance, read_manifest
from asr.decoders import make_decoder
from asr.recognizer import Recognizer, load_model
from asr.scoring import score
from asr.transcribe import TranscribeOptions, transcribe
from asr.vad import ABSOLUTE_FLOOR_DB, SILENCE_DB, VAD_OFF, VadOptions, band_pass, detect

ROOT = Path(__file__).resolve().parents[1]
LEVELS_DB = (-60, -40, -20, -10)
DURATIONS = (1.0, 2.0, 3.0)
GAP_SECONDS = (1.0, 2.0)
GAP_SNR_DB = 30.0  # noise in the gaps this far below the RMS of the speech in the file
GROUP = {"fsdd": 10, "asterisk": 6}
PREPARE_HINT = ("make them with the prepare and split steps of pipelines/default_model.sh, e.g.\n"
                "  asr prepare fsdd ../shared/data/fsdd --out work/default/fsdd.jsonl --config configs/default.yaml\n"
                "  asr split work/default/fsdd.jsonl --dev 0.2 --test 0.2 --seed 0\n"
                "  asr prepare tsv ../shared/data/asterisk --out work/default/asterisk.jsonl "
                "--config configs/default.yaml\n"
                "  asr split work/default/asterisk.jsonl --dev 0.1 --test 0.1 --seed 0")


# --- generated non-speech ----------------------------------------------------------------------------------


def scaled(signal: np.ndarray, level_db: float) -> np.ndarray:
    """`signal` at an RMS of `level_db` dB re full scale."""
    return (signal / np.sqrt(np.mean(signal ** 2)) * 10 ** (level_db / 20)).astype(np.float32)


def pink(count: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(count))
    return np.fft.irfft(spectrum / np.sqrt(np.maximum(np.arange(len(spectrum)), 1)), count)


def hum(count: int, rate: int, mains_hz: float) -> np.ndarray:
    t = np.arange(count) / rate
    return sum(np.sin(2 * np.pi * mains_hz * k * t) / k for k in (1, 2, 3))


def clicks(count: int, rng: np.random.Generator, per_second: float = 8.0) -> np.ndarray:
    """Short Hann-shaped pops of either sign at -6 dBFS peak on digital silence."""
    out = np.zeros(count, np.float32)
    for position in rng.integers(0, count - 8, max(1, int(per_second * count / 8000))):
        out[position:position + 8] += 0.5 * np.hanning(8) * rng.choice([-1.0, 1.0])
    return out


def non_speech_clips(rate: int, seeds: int) -> dict[str, list[np.ndarray]]:
    """Kind -> clips (every duration × seed)."""
    kinds: dict[str, list[np.ndarray]] = {}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for duration in DURATIONS:
            n = int(duration * rate)
            clips = {"digital silence": np.zeros(n, np.float32), "clicks": clicks(n, rng),
                     "hum 50 Hz -20 dBFS": scaled(hum(n, rate, 50.0), -20),
                     "hum 60 Hz -20 dBFS": scaled(hum(n, rate, 60.0), -20)}
            for level in LEVELS_DB:
                clips[f"white {level} dBFS"] = scaled(rng.standard_normal(n), level)
                clips[f"pink {level} dBFS"] = scaled(pink(n, rng), level)
            for kind, clip in clips.items():
                kinds.setdefault(kind, []).append(clip)
    return kinds


# --- systems -----------------------------------------------------------------------------------------------


class EnergyGatedModel:
    """The model with every output frame whose band power is under the absolute floor forced to blank."""

    def __init__(self, model: Recognizer):
        self.model, self.sample_rate, self.frame_seconds = model, model.sample_rate, model.frame_seconds

    def logits(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for waveform, logits in zip(waveforms, self.model.logits(waveforms), strict=True):
            step = round(self.frame_seconds * self.sample_rate)
            band = band_pass(np.asarray(waveform, np.float64), self.sample_rate)
            power = [np.mean(band[t * step:(t + 1) * step] ** 2) if len(band[t * step:(t + 1) * step]) else 0.0
                     for t in range(len(logits))]
            quiet = 10 * np.log10(np.maximum(power, 10 ** (SILENCE_DB / 10))) < ABSOLUTE_FLOOR_DB
            logits = logits.copy()
            logits[quiet] = -1e4
            logits[quiet, 0] = 1e4  # class 0 is the CTC blank
            out.append(logits)
        return out


SYSTEMS = {"no VAD": VAD_OFF, "blank posteriors + energy floor": VAD_OFF,
           "webrtcvad (aggressiveness 0)": VadOptions(method="webrtc", aggressiveness=0),
           "webrtcvad (aggressiveness 3)": VadOptions(method="webrtc", aggressiveness=3),
           "voicing (default)": VadOptions()}


def run_system(name: str, paths: list[str], model: Recognizer, out: Path) -> tuple[list[dict], float]:
    """Transcript rows of `paths` under one system, and the wall seconds it took."""
    runner = EnergyGatedModel(model) if name.startswith("blank") else model
    start = time.perf_counter()
    results = transcribe(paths, runner, make_decoder(model.config.alphabet()), TranscribeOptions(vad=SYSTEMS[name]),
                         progress=False)
    rows = [result.row() for result in results]
    return rows, time.perf_counter() - start


# --- real speech with pauses -------------------------------------------------------------------------------


def with_pauses(name: str, rows: list[Utterance], group: int, rate: int, folder: Path, seed: int = 0
                ) -> list[Utterance]:
    """Long files of `group` utterances each, 1-2 s gaps between and around them (odd files: low noise in the
    gaps, GAP_SNR_DB below the speech)."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(0, len(rows), group):
        part = rows[index:index + group]
        noisy = (index // group) % 2 == 1
        speech = [load_audio(row.audio_filepath, rate) for row in part]
        level = 10 * np.log10(np.mean(np.concatenate(speech) ** 2)) - GAP_SNR_DB
        pieces = []
        for audio in [*speech, None]:
            gap = int(rng.uniform(*GAP_SECONDS) * rate)
            pieces.append(scaled(rng.standard_normal(gap), level) if noisy else np.zeros(gap, np.float32))
            if audio is not None:
                pieces.append(audio)
        path = folder / f"{name}-{'noise' if noisy else 'silence'}-gaps-{index // group:03d}.wav"
        audio = np.concatenate(pieces)
        write_audio(path, audio, rate)
        out.append(Utterance(str(path), len(audio) / rate, " ".join(r.text for r in part)))
    return out


def real_speech(model: Recognizer, sets: dict[str, list[Utterance]], folder: Path, bootstrap: int) -> None:
    print("\n| test set | files | audio min | system | WER (95% CI) | Δ WER vs no VAD (95% CI) | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name, refs in sets.items():
        paths = [r.audio_filepath for r in refs]
        minutes = sum(r.duration for r in refs) / 60
        baseline = None
        for system in SYSTEMS:
            rows, wall = run_system(system, paths, model, folder / "out.jsonl")
            result = score(refs, rows, n_resamples=bootstrap)
            counts = (np.array([u.words.errors for u in result.utterances]),
                      np.array([u.words.ref for u in result.utterances]))
            delta = "—"
            if baseline is None:
                baseline = counts
            else:
                interval, _ = paired_bootstrap(counts, baseline, bootstrap, DEFAULT_SEED)
                difference = result.wer - baseline[0].sum() / baseline[1].sum()
                delta = f"{difference:+.1%} ({interval[0]:+.1%} to {interval[1]:+.1%})" if interval else "—"
            low, high = result.wer_ci or (float("nan"), float("nan"))
            print(f"| {name} | {len(refs)} | {minutes:.1f} | {system} | {result.wer:.1%} ({low:.1%}–{high:.1%}) "
                  f"| {delta} | {wall:.1f} |", flush=True)


def generated(model: Recognizer, seeds: int, folder: Path) -> None:
    kinds = non_speech_clips(model.sample_rate, seeds)
    paths: dict[str, list[str]] = {}
    for kind, clips in kinds.items():
        for index, clip in enumerate(clips):
            path = folder / f"{kind.replace(' ', '_')}-{index}.wav"
            write_audio(path, clip, model.sample_rate)
            paths.setdefault(kind, []).append(str(path))
    every = [p for group in paths.values() for p in group]
    empty: dict[str, dict[str, float]] = {}
    for system in SYSTEMS:
        rows, _ = run_system(system, every, model, folder / "out.jsonl")
        text = {row["audio_filepath"]: row.get("text") for row in rows}
        empty[system] = {kind: np.mean([text[p] == "" for p in group]) for kind, group in paths.items()}
        empty[system]["all"] = np.mean([text[p] == "" for p in every])
    print(f"Generated non-speech: {len(every)} clips ({', '.join(f'{d:g}' for d in DURATIONS)} s × {seeds} seeds "
          f"per kind); fraction transcribed as empty text\n")
    print("| clip | " + " | ".join(SYSTEMS) + " |")
    print("|---|" + "---|" * len(SYSTEMS))
    for kind in [*paths, "all"]:
        print(f"| {kind} | " + " | ".join(f"{empty[s][kind]:.0%}" for s in SYSTEMS) + " |", flush=True)


def vad_cost(model: Recognizer, repeats: int = 3) -> None:
    """Seconds `detect` takes on a minute of speech-like audio (Asterisk prompts) at the model's rate."""
    prompts = sorted((ROOT.parent / "shared" / "data" / "asterisk" / "wav8k").glob("*.wav"))[:30]
    audio = np.concatenate([load_audio(p, model.sample_rate) for p in prompts])[:60 * model.sample_rate]
    print(f"\nVAD cost on {len(audio) / model.sample_rate:.0f} s of Asterisk prompts at {model.sample_rate} Hz "
          f"(median of {repeats}):")
    for name in ("voicing (default)", "webrtcvad (aggressiveness 3)"):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            detect(audio, model.sample_rate, SYSTEMS[name])
            times.append(time.perf_counter() - start)
        print(f"- {name}: {statistics.median(times):.3f} s", flush=True)


def settings(model: Recognizer, fsdd_rows: list[Utterance], folder: Path, seeds: int) -> None:
    """The measurements behind the chosen settings (with --settings): blank posteriors on noise, padding,
    and the detection rule's misses and false alarms on more corpora and at 16 kHz."""
    from asr.decoding import log_softmax

    print("\nModel blank posterior on generated non-speech (no VAD): share of frames with P(blank) < 0.5")
    for kind, clips in non_speech_clips(model.sample_rate, 1).items():
        shares = [np.mean(np.exp(log_softmax(logits)[:, 0]) < 0.5) for logits in model.logits(clips)]
        print(f"- {kind}: {min(shares):.0%}–{max(shares):.0%}")
    decoder = make_decoder(model.config.alphabet())
    audio = [load_audio(row.audio_filepath, model.sample_rate) for row in fsdd_rows]
    print("\nFSDD test, no VAD, digital zeros added to both ends: WER")
    for seconds in (0.0, 0.02, 0.05, 0.1, 0.25):
        pad = np.zeros(round(seconds * model.sample_rate), np.float32)
        hyps = []
        for start in range(0, len(audio), 50):
            batch = [np.concatenate([pad, a, pad]) for a in audio[start:start + 50]]
            hyps += [{"audio_filepath": row.audio_filepath, "text": decoder.decode(logits, model.frame_seconds).text}
                     for row, logits in zip(fsdd_rows[start:start + 50], model.logits(batch), strict=True)]
        print(f"- {seconds:g} s: {score(fsdd_rows, hyps, n_resamples=0).wer:.1%}", flush=True)
    print("\nFSDD test with pauses, voicing VAD with each padding: WER")
    long_files = with_pauses("fsdd", fsdd_rows, GROUP["fsdd"], model.sample_rate, folder)
    for seconds in (0.05, 0.1, 0.15, 0.25):
        SYSTEMS["padding"] = VadOptions(pad_seconds=seconds)
        rows, _ = run_system("padding", [r.audio_filepath for r in long_files], model, folder / "out.jsonl")
        print(f"- {seconds:g} s: {score(long_files, rows, n_resamples=0).wer:.1%}", flush=True)
    print("\nVoicing VAD (detect) at 8 and 16 kHz: non-speech clips with speech found, utterances without")
    found = [bool(detect(clip, rate, VadOptions()).spans) for rate in (8000, 16000)
             for clips in non_speech_clips(rate, seeds + 2).values() for clip in clips]
    print(f"- generated non-speech ({seeds + 2} seeds): {sum(found)} of {len(found)}")
    shared = ROOT.parent / "shared" / "data"
    for corpus, count, rate in (("fsdd", 0, 8000), ("asterisk", 0, 8000), ("an4_wav", 150, 16000),
                                ("speech_commands", 300, 16000)):
        if count:
            with (shared / corpus / "transcripts.tsv").open() as handle:
                paths = [shared / corpus / line.split("\t")[0] for line in list(handle)[1:count + 1]]
        else:
            paths = [row.audio_filepath for row in read_manifest(ROOT / f"work/default/{corpus}.test.jsonl")]
        missed = [str(p) for p in paths if not detect(load_audio(p, rate), rate, VadOptions()).spans]
        print(f"- {corpus} ({rate} Hz): {len(missed)} of {len(paths)} missed {[Path(p).name for p in missed]}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="run directory or exported model (default: bundled)")
    parser.add_argument("--fsdd", type=Path, default=ROOT / "work/default/fsdd.test.jsonl")
    parser.add_argument("--asterisk", type=Path, default=ROOT / "work/default/asterisk.test.jsonl")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--settings", action="store_true",
                        help="instead: the measurements behind the VAD's padding and detection settings")
    parser.add_argument("--generated-only", action="store_true",
                        help="only the generated non-speech clips (no test manifests needed)")
    args = parser.parse_args()
    if args.generated_only:
        model = load_model(args.model)
        print(f"model: {model.source}\n")
        with tempfile.TemporaryDirectory() as folder:
            generated(model, args.seeds, Path(folder))
        return
    try:
        manifests = {"fsdd": read_manifest(args.fsdd), "asterisk": read_manifest(args.asterisk)}
    except ManifestError as error:
        sys.exit(f"{error}\n{PREPARE_HINT}")
    model = load_model(args.model)
    print(f"model: {model.source}\n")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.settings:
            settings(model, manifests["fsdd"], folder, args.seeds)
            return
        generated(model, args.seeds, folder)
        sets = {}
        for corpus, rows in manifests.items():
            sets[f"{corpus} test, as is"] = rows
            sets[f"{corpus} test with pauses"] = with_pauses(corpus, rows, GROUP[corpus], model.sample_rate, folder)
        real_speech(model, sets, folder, args.bootstrap)
    vad_cost(model)


if __name__ == "__main__":
    main()
