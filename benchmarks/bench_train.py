"""Training throughput on this machine: audio seconds trained per wall-clock second, and parameter counts.

    python benchmarks/bench_train.py [--steps 20] [--configs tiny default] [--subsampling 1 2 3 4]
    python benchmarks/bench_train.py --configs default --subsampling 3 --sizes 128x3 160x3 224x3 160x2 160x4
    python benchmarks/bench_train.py --configs default --subsampling 3 --sizes 224x3 --cpu-lstm keras fused \
        fused_bf16 --repeats 3      # the CPU BiLSTM paths (train.cpu_lstm) side by side, interleaved
    python benchmarks/bench_train.py --configs default --subsampling 3 --sizes 224x3 --batches 32:16000 64:32000 \
        --repeats 3                 # batch size : frame budget (data.batch_size, data.max_frames_per_batch)
    python benchmarks/bench_train.py --configs default --subsampling 3 --sizes 224x3 --data words sentences \
        --cpu-lstm keras auto --ctc keras asr --repeats 3   # before #27 (keras, keras) against now (auto, asr)

Trains each config (with the given subsampling) for `--steps` steps at 8 kHz on real speech prepared on the
fly from ../shared/data, after 3 warm-up steps that include tracing: `--data words` is Asterisk prompts of
up to 6 s (short labels), `sentences` LJ Speech's read sentences (1-10 s, up to ~170 characters), the two
kinds of row the bundled model's training mix holds; `--ctc` compares the CTC loss (`asr`:
`asr.ctc_trainer.ctc_loss`, TensorFlow's C++ kernel on CPU; `keras`: `keras.ops.ctc_loss`); `--sizes
UNITSxLAYERS` measures other BiLSTM widths and depths of each config (the cost side of a width/depth sweep;
`--repeats` takes the median; `--cpu-lstm` compares `train.cpu_lstm` paths and `--batches` batch sizes with
their frame budgets, one repeat of each in turn so that a noisy machine slows them alike). The batches
come from the real input pipeline, so decoding and features are part of the measured time, as in training.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from asr import ctc_trainer
from asr.backend import keras
from asr.config import CPU_LSTM_PATHS, load_config
from asr.corpora import prepare
from asr.cpu_rnn import training_network
from asr.ctc_trainer import CTCTrainer
from asr.data import ValidationRules, read_manifest
from asr.dataset import make_dataset
from asr.model import build_network
from asr.optim import make_optimizer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WARMUP_STEPS = 3
MAX_WORD_SECONDS = 6.0
MAX_SENTENCE_SECONDS = 10.0
CTC_LOSSES = ("asr", "keras")


@contextlib.contextmanager
def ctc_loss_used(name: str | None):
    """Training steps traced inside use that CTC loss (`keras`: the loss asr trained with before #27)."""
    saved = ctc_trainer.ctc_loss
    if name == "keras":
        ctc_trainer.ctc_loss = ctc_trainer.keras_ctc_loss
    try:
        yield
    finally:
        ctc_trainer.ctc_loss = saved


def benchmark_rows(data: str, tmp: Path) -> list:
    """Real 8 kHz speech for the timed steps: `words` (short Asterisk prompts) or `sentences` (LJ Speech)."""
    source, limit = {"words": ("asterisk", MAX_WORD_SECONDS), "sentences": ("ljspeech", MAX_SENTENCE_SECONDS)}[data]
    manifest = tmp / f"{source}.jsonl"
    rules = ValidationRules(features=load_config(None, ["features.sample_rate=8000"]).features, subsampling=4)
    prepare("tsv", SHARED / source, manifest, rules=rules, progress=False)
    return [r for r in read_manifest(manifest) if r.duration <= limit]


def throughput(config_name: str, subsampling: int, rows, steps: int, size: str | None = None,
               cpu_lstm: str | None = None, batch: str | None = None, ctc: str | None = None
               ) -> tuple[int, float, float]:
    overrides = [f"model.subsampling={subsampling}", "features.sample_rate=8000"]
    if batch:
        batch_size, frames = batch.split(":")
        overrides += [f"data.batch_size={batch_size}", f"data.max_frames_per_batch={frames}"]
    if cpu_lstm:
        overrides.append(f"train.cpu_lstm={cpu_lstm}")
    if size:
        units, layers = size.split("x")
        overrides += [f"model.units={units}", f"model.layers={layers}"]
    config = load_config(ROOT / "configs" / f"{config_name}.yaml", overrides)
    network = build_network(config)
    trainer = CTCTrainer(network, training_network(network, config))
    trainer.compile(optimizer=make_optimizer(config, 1000))
    batches = list(make_dataset(rows, config, training=True, epochs=4).take(WARMUP_STEPS + steps))
    audio = sum(float(b["feature_lengths"].numpy().sum()) for b in batches[WARMUP_STEPS:]) \
        / config.features.frames_per_second
    with ctc_loss_used(ctc):
        for batch in batches[:WARMUP_STEPS]:
            trainer.train_on_batch(batch)
        start = time.perf_counter()
        for batch in batches[WARMUP_STEPS:]:
            trainer.train_on_batch(batch)
        elapsed = time.perf_counter() - start
    return network.count_params(), audio / elapsed, audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--configs", nargs="+", default=["tiny", "default"])
    parser.add_argument("--subsampling", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--sizes", nargs="+", default=[None], metavar="UNITSxLAYERS",
                        help="BiLSTM width x depth, e.g. 160x3 (default: each config's own)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row; the median is printed")
    parser.add_argument("--cpu-lstm", nargs="+", default=[None], choices=CPU_LSTM_PATHS,
                        help="train.cpu_lstm paths to compare (default: each config's own)")
    parser.add_argument("--batches", nargs="+", default=[None], metavar="SIZE:FRAMES",
                        help="batch sizes and frame budgets to compare, e.g. 32:16000 (default: each config's own)")
    parser.add_argument("--data", nargs="+", default=["words"], choices=("words", "sentences"),
                        help="words: Asterisk prompts <= 6 s; sentences: LJ Speech <= 10 s (default: words)")
    parser.add_argument("--ctc", nargs="+", default=[None], choices=CTC_LOSSES,
                        help="CTC losses to compare (default: asr's)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    print(f"{args.steps} timed steps after {WARMUP_STEPS} warm-up steps\n")
    print("| data | config | subsampling | BiLSTM units x layers | train.cpu_lstm | CTC loss | batch:frames "
          "| parameters | audio s / wall s | × first | audio timed (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            rows = benchmark_rows(data, Path(tmp))
            for name in args.configs:
                for factor in args.subsampling:
                    for size in args.sizes:
                        measure_variants(args, data, rows, name, factor, size)


def measure_variants(args: argparse.Namespace, data: str, rows: list, name: str, factor: int,
                     size: str | None) -> None:
    """Every (cpu_lstm, ctc, batch) combination, one repeat of each in turn, medians printed as table rows."""
    variants = [(path, ctc, batch) for path in args.cpu_lstm for ctc in args.ctc for batch in args.batches]
    runs = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for path, ctc, batch in variants:
            runs[path, ctc, batch].append(throughput(name, factor, rows, args.steps, size, path, batch, ctc))
    first = statistics.median(run[1] for run in runs[variants[0]])
    for (path, ctc, batch), measured in runs.items():
        params, _, audio = measured[0]
        speed = statistics.median(run[1] for run in measured)
        print(f"| {data} | {name} | {factor} | {size or 'config'} | {path or 'config'} | {ctc or 'asr'} "
              f"| {batch or 'config'} | {params:,} | {speed:.1f} | {speed / first:.2f} | {audio:.0f} |", flush=True)


if __name__ == "__main__":
    main()
