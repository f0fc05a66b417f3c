"""`asr transcribe --engine ray`: the same transcription, spread over a Ray cluster with Ray Data.

Each Ray actor loads the model and decoder once and runs `asr.transcribe.transcribe` on its blocks of
files, exactly as the in-process engine does, so outputs are identical; rows stream back to the caller,
which writes them as it writes the local engine's (so `--resume`, formats and atomic writes behave the
same). Local by default (`ray.init()` starts a private cluster on this machine); `--address` joins an
existing one (e.g. `ray://head:10001` or `auto`). Needs the `ray` extra: `pip install -e '.[ray]'`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from asr.decoding import DecodingOptions
from asr.transcribe import TranscribeOptions, transcribe

FILES_PER_TASK = 32


class RayUnavailable(RuntimeError):
    pass


class _Transcriber:
    """Ray Data callable class: one model per actor, reused for every block it is given."""

    def __init__(self, model_path: str | None, decoding: DecodingOptions, options: TranscribeOptions):
        from asr.decoders import make_decoder
        from asr.recognizer import load_model

        self.model = load_model(model_path)
        self.decoder = make_decoder(self.model.config.alphabet(), decoding)
        self.options = options

    def __call__(self, batch: dict) -> dict:
        results = transcribe([str(p) for p in batch["path"]], self.model, self.decoder, self.options, progress=False)
        return {"row": [json.dumps(result.row()) for result in results]}


def transcribe_with_ray(paths: list[str], model_path: Path | None, decoding: DecodingOptions,
                        options: TranscribeOptions, address: str | None = None, actors: int | None = None
                        ) -> Iterator[dict]:
    """The rows `asr.transcribe.transcribe` would give (as `FileResult.row()`), computed by Ray actors."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install -e '.[ray]'") from None
    if not paths:
        return
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    workers = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // 2)
    dataset = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=max(1, len(paths) // 8))
    rows = dataset.map_batches(
        _Transcriber, fn_constructor_args=(str(model_path) if model_path else None, decoding, options),
        batch_size=FILES_PER_TASK, concurrency=workers, batch_format="numpy")
    for item in rows.iter_rows():
        yield json.loads(item["row"])
