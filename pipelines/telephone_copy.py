"""A telephone copy of a manifest's audio: 300-3400 Hz band-pass, 8 kHz, G.711 mu-law coded and decoded.

    python pipelines/telephone_copy.py work/default/an4.test.jsonl --out work/default/an4_phone

Scores the same utterances as a wideband recording and as they would arrive over a phone line, so one model
can be measured on both: `asr evaluate --manifest OUT/manifest.jsonl`. Writes OUT/audio/*.wav (16-bit PCM
holding the decoded mu-law values) and OUT/manifest.jsonl with the original texts and speakers. The channel
itself: `asr.synthesis.degrade.telephone`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.audio import load_audio
from asr.data import Utterance, read_manifest, write_manifest
from asr.synthesis.degrade import TELEPHONE_RATE, telephone, write_wav


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="manifest whose audio to copy")
    parser.add_argument("--out", type=Path, required=True, help="folder for audio/ and manifest.jsonl")
    args = parser.parse_args(argv)
    rows = []
    for row in read_manifest(args.manifest):
        target = args.out / "audio" / f"{Path(row.audio_filepath).stem}.wav"
        samples = telephone(load_audio(row.audio_filepath, TELEPHONE_RATE))
        write_wav(target, samples, TELEPHONE_RATE)
        rows.append(Utterance(str(target), samples.size / TELEPHONE_RATE, row.text, speaker=row.speaker))
    write_manifest(args.out / "manifest.jsonl", rows)
    print(f"{len(rows)} telephone copies: {args.out / 'manifest.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
