"""`asr transcribe --engine ray`: the same transcription, spread over a Ray cluster with Ray Data.

Each Ray actor loads the model and decoder once and runs `asr.transcribe.transcribe` on its blocks of
files, exactly as the in-process engine does, so outputs are identical; rows stream back to the driver,
which writes them through the usual `OutputWriter` (so `--resume`, formats and atomic writes behave the
same). Local by default (`ray.init()` starts a private cluster on this machine); `--address` joins an
existing one (e.g. `ray://head:10001` or `auto`). Needs the `ray` extra: `pip install -e '.[ray]'`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from asr.decoding import DecodingOptions
from asr.outputs import OutputWriter
from asr.transcribe import DEFAULT_VAD, Summary, transcribe
from asr.vad import VadOptions

FILES_PER_TASK = 32


class RayUnavailable(RuntimeError):
    pass


class _Collector:
    """An OutputWriter stand-in that keeps rows in memory for one block of files."""

    def __init__(self):
        self.rows: list[dict] = []

    def is_done(self, path: str) -> bool:
        return False

    def write(self, row: dict) -> None:
        self.rows.append(row)


class _Transcriber:
    """Ray Data callable class: one model per actor, reused for every block it is given."""

    def __init__(self, model_path: str | None, decoding: DecodingOptions, batch_size: int, window: float,
                 overlap: float, vad: VadOptions = DEFAULT_VAD):
        from asr.decoding import make_decoder
        from asr.inference import load_recognition_model

        self.model = load_recognition_model(model_path)
        self.decoder = make_decoder(self.model.config.alphabet(), decoding)
        self.options = {"batch_size": batch_size, "window": window, "overlap": overlap, "progress": False,
                        "vad": vad}

    def __call__(self, batch: dict) -> dict:
        collector = _Collector()
        transcribe([str(p) for p in batch["path"]], self.model, self.decoder, collector, **self.options)
        return {"row": [json.dumps(row) for row in collector.rows]}


def transcribe_with_ray(paths: list[str], model_path: Path | None, decoding: DecodingOptions, writer: OutputWriter,
                        batch_size: int, window: float, overlap: float, address: str | None = None,
                        actors: int | None = None, vad: VadOptions = DEFAULT_VAD) -> Summary:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install -e '.[ray]'") from None
    start = time.perf_counter()
    todo = [p for p in paths if not writer.is_done(p)]
    summary = Summary(skipped=len(paths) - len(todo))
    if todo:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        workers = actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // 2)
        dataset = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=max(1, len(todo) // 8))
        rows = dataset.map_batches(
            _Transcriber, fn_constructor_args=(str(model_path) if model_path else None, decoding, batch_size,
                                               window, overlap, vad),
            batch_size=FILES_PER_TASK, concurrency=workers, batch_format="numpy")
        for item in rows.iter_rows():
            row = json.loads(item["row"])
            writer.write(row)
            if "error" in row:
                summary.failed += 1
            else:
                summary.done += 1
                summary.audio_seconds += row["duration"]
    summary.wall_seconds = time.perf_counter() - start
    return summary
