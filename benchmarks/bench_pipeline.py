"""Input-pipeline and front-end benchmark. Prints numbers; asserts nothing.

    python benchmarks/bench_pipeline.py [--repeats 3]

1. tf.data throughput (utterances/s, audio seconds/s) and padding fraction, with and without length
   bucketing, on the shared Asterisk and FSDD corpora (8 kHz, batch 16, training mode with SpecAugment).
2. Log-mel on 60 s of 16 kHz speech: this project's in-graph front end vs librosa.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

from asr.audio import load_audio
from asr.backend import tf
from asr.config import load_config
from asr.corpora import prepare
from asr.data import ValidationRules, read_manifest
from asr.dataset import make_dataset
from asr.features import FeatureConfig, log_mel

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORPORA = {"asterisk": ("tsv", SHARED / "asterisk"), "fsdd": ("fsdd", SHARED / "fsdd")}


def pipeline_pass(rows, config, bucketing: bool) -> tuple[float, float, float]:
    start = time.perf_counter()
    real = padded = 0
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, bucketing=bucketing))
    for batch in make_dataset(rows, config, training=True):
        lengths = batch["feature_lengths"].numpy()
        shape = batch["features"].shape
        real += int(lengths.sum())
        padded += shape[0] * shape[1] - int(lengths.sum())
    seconds = time.perf_counter() - start
    audio_seconds = sum(r.duration for r in rows)
    return len(rows) / seconds, audio_seconds / seconds, padded / (real + padded)


def bench_pipeline(repeats: int) -> None:
    config = load_config(None, ["features.sample_rate=8000", "data.batch_size=16"])
    print("| corpus | utterances | bucketing | utterances/s | audio s/s | padding |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, source) in CORPORA.items():
            manifest = Path(tmp) / f"{name}.jsonl"
            prepare(fmt, source, manifest, rules=ValidationRules(features=config.features), progress=False)
            rows = read_manifest(manifest)
            for bucketing in (False, True):
                runs = [pipeline_pass(rows, config, bucketing) for _ in range(repeats)]
                utt, audio, pad = (statistics.median(r[i] for r in runs) for i in range(3))
                print(f"| {name} | {len(rows)} | {'yes' if bucketing else 'no'} | {utt:.0f} | {audio:.0f} | "
                      f"{pad:.1%} |")


def bench_log_mel(repeats: int) -> None:
    clips = sorted((SHARED / "asterisk" / "wav8k").glob("*.wav"))
    audio = np.concatenate([load_audio(p, 16000) for p in clips[:60]])[: 60 * 16000]
    assert len(audio) == 60 * 16000, "need 60 s of audio"
    config = FeatureConfig()
    graph = tf.function(lambda x, n: log_mel(x, n, config))
    batch, lengths = tf.constant(audio[None]), tf.constant([len(audio)])
    graph(batch, lengths)  # trace once

    def run_librosa():
        mel = librosa.feature.melspectrogram(y=audio, sr=16000, n_fft=512, hop_length=160, win_length=400,
                                             center=False, n_mels=80)
        return np.log(mel + 1e-6)

    timings = {}
    for name, fn in {"asr log_mel (tf.function)": lambda: graph(batch, lengths)[0].numpy(),
                     "librosa melspectrogram + log": run_librosa}.items():
        fn()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples)
    print("\n| front end on 60 s of 16 kHz audio | median ms | × real time |")
    print("|---|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds * 1000:.1f} | {60 / seconds:.0f} |")
    ours, theirs = timings["asr log_mel (tf.function)"], timings["librosa melspectrogram + log"]
    print(f"\nratio librosa / asr: {theirs / ours:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_pipeline(args.repeats)
    bench_log_mel(max(5, args.repeats))


if __name__ == "__main__":
    main()
