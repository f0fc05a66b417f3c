"""Decode a manifest with pocketsphinx (its bundled US-English acoustic model, LM and dictionary) and score it.

    python pipelines/pocketsphinx_baseline.py --manifest work/default/fsdd.test.jsonl --report reports/ps/fsdd

The classic HMM/GMM baseline next to our models on the same files. pocketsphinx wants 16 kHz 16-bit PCM, so
8 kHz audio is resampled up (its model was trained on wideband speech; that is its handicap, and ours is
the tiny training set). Writes REPORT/transcripts.jsonl and the usual reports; prints WER, CER and RTF.
Needs `pip install pocketsphinx` (the project's `baselines` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from asr.audio import AudioError, load_audio
from asr.data import read_manifest
from asr.report import write_reports, write_speed
from asr.scoring import score
from asr.utils import atomic_write

SAMPLE_RATE = 16_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    try:
        from pocketsphinx import Decoder
    except ImportError:
        print("error: pocketsphinx is not installed: pip install -e '.[baselines]'", file=sys.stderr)
        return 2
    decoder = Decoder(samprate=SAMPLE_RATE, logfn="/dev/null")
    rows = read_manifest(args.manifest)
    hypotheses, audio_seconds = [], 0.0
    start = time.perf_counter()
    for row in rows:
        try:
            samples = load_audio(row.audio_filepath, SAMPLE_RATE)
        except AudioError as error:
            hypotheses.append({"audio_filepath": row.audio_filepath, "error": str(error)})
            continue
        audio_seconds += len(samples) / SAMPLE_RATE
        decoder.start_utt()
        decoder.process_raw((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        hypotheses.append({"audio_filepath": row.audio_filepath, "text": hypothesis.hypstr if hypothesis else ""})
    wall = time.perf_counter() - start
    args.report.mkdir(parents=True, exist_ok=True)
    here = args.report.resolve()  # audio named relative to the transcripts, as `asr evaluate` writes them
    with atomic_write(args.report / "transcripts.jsonl") as handle:
        handle.writelines(json.dumps({**h, "audio_filepath": os.path.relpath(h["audio_filepath"], here)}) + "\n"
                          for h in hypotheses)
    result = score(rows, hypotheses, ref_path=str(args.manifest), hyp_path="pocketsphinx en-us")
    write_reports(result, args.report)
    write_speed(args.report, audio_seconds, wall, threads=1)
    print(f"pocketsphinx on {args.manifest}: WER {result.wer:.2%} CER {result.cer:.2%}, "
          f"{audio_seconds:.0f} s of audio in {wall:.1f} s (RTF {wall / max(audio_seconds, 1e-9):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
