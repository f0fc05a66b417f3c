"""Build a word n-gram language model (ARPA) for the beam_lm decoder from transcripts: `asr lm`, by its old name.

    python pipelines/build_lm.py TEXT_OR_MANIFEST... [--order 3] [--background-words N] --out lm.arpa

The same arguments, output and exit status as `asr lm` (asr/cli.py; the library code is `asr.lm.build_lm` and
`asr.lm.background_words`), kept for the recipes and the commands in recipes/*/HISTORY.md that run this script.
"""

from __future__ import annotations

import sys

from asr.cli import main as asr_main


def main(argv: list[str] | None = None) -> int:
    return asr_main(["lm", *(sys.argv[1:] if argv is None else argv)], only="lm")


if __name__ == "__main__":
    sys.exit(main())
