"""The one factory for every decoder: greedy (asr.decoding) or a beam search (asr.beam_search).

A module of its own because the beam decoders build on asr.decoding's transcripts and options: with the factory
in either of the two modules, they would import each other.
"""

from __future__ import annotations

from asr.beam_search import make_beam_decoder
from asr.decoding import Decoder, DecodingOptions, GreedyDecoder
from asr.text import Alphabet


def make_decoder(alphabet: Alphabet, options: DecodingOptions | None = None) -> Decoder:
    """The decoder `options` describe (default: greedy), for this alphabet. flashlight-text itself is loaded
    only when a beam decoder first searches."""
    options = options or DecodingOptions()
    if options.decoder == "greedy":
        return GreedyDecoder(alphabet, options.calibration)
    return make_beam_decoder(alphabet, options)
