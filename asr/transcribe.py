"""Batch transcription: many audio files in, one transcript each out; bad files reported, nothing lost.

Files are read in windows of at most `window_seconds`, so memory does not grow with file length. A window
ends at the latest pause in its last quarter (found by the voice activity detector, `asr.vad`) and the
next one starts there; where there is no pause, it ends at the fixed edge and the next one starts
`overlap_seconds` earlier. Each word belongs to the window whose owned span (up to the pause, or the
window less half the overlap at each inner edge) holds its midpoint, so joined transcripts neither drop
nor repeat words at the seams. Only the speech regions of a window are decoded, each on its own: silence
and noise reach no model, and a file without speech gets an empty transcript. Segments of similar length
are batched together.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import AUDIO_EXTENSIONS, AudioError, audio_info, resample
from asr.data import ManifestError, read_manifest
from asr.decoding import Decoder, Transcript, Word
from asr.inference import RecognitionModel
from asr.outputs import OutputWriter
from asr.vad import VadOptions, detect

WINDOW_SECONDS = 20.0
OVERLAP_SECONDS = 2.0
BATCH_SIZE = 16
PAUSE_SEARCH_FRACTION = 0.25  # a window may end at a pause in its last quarter: windows stay 75-100% full
DEFAULT_VAD = VadOptions()


@dataclass
class Segment:
    file: int
    offset: float  # seconds from the start of the file
    owned: tuple[float, float]  # words whose midpoint (file time) falls here are kept
    samples: np.ndarray  # a speech region of the window (the whole window with the VAD off); may be empty
    last: bool
    window_end: float  # seconds: where the window this came from ends


@dataclass
class FileResult:
    path: str
    duration: float = 0.0
    words: list[Word] = field(default_factory=list)
    error: str | None = None

    def row(self) -> dict:
        if self.error is not None:
            return {"audio_filepath": self.path, "error": self.error}
        return {"audio_filepath": self.path, "duration": round(self.duration, 3),
                "text": " ".join(w.word for w in self.words),
                "words": [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                           "confidence": round(w.confidence, 4)} for w in self.words]}


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    def describe(self) -> str:
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0
        rtf = self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0
        skipped = f", {self.skipped} already done (--resume)" if self.skipped else ""
        return (f"{self.done} transcribed, {self.failed} failed{skipped}; {self.audio_seconds / 3600:.3f} h of audio "
                f"in {self.wall_seconds:.1f} s: RTF {rtf:.4f} ({speed:.0f}× real time)")


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, folders (searched recursively for audio), glob patterns and manifests -> audio paths.

    A name that matches nothing is kept, so it is reported as a failed input rather than vanishing.
    """
    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        elif path.suffix == ".jsonl" and path.is_file():
            try:
                paths += [row.audio_filepath for row in read_manifest(path) if row.audio_filepath]
            except ManifestError as error:
                raise ValueError(str(error)) from None
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            paths += matches or [item]
        else:
            paths.append(item)
    return list(dict.fromkeys(paths))  # each file once, first occurrence wins


def read_segments(path: str, file: int, sample_rate: int, window: float = WINDOW_SECONDS,
                  overlap: float = OVERLAP_SECONDS, vad: VadOptions = DEFAULT_VAD) -> Iterator[Segment]:
    """The speech of the file, window by window, at `sample_rate`; raises AudioError on unusable audio.

    At most one window of audio is read at a time. The file's last segment has `last` set; it is an empty
    one when the last window holds no speech, so that the file is still finished (with no words).
    """
    audio_info(path)  # header checks: missing, empty, not audio, truncated, zero samples
    try:
        with sf.SoundFile(path) as handle:
            rate, total = handle.samplerate, handle.frames
            window_frames, step = round(window * rate), round((window - overlap) * rate)
            start, owned_from = 0, 0.0
            while True:
                last = start + window_frames >= total
                handle.seek(start)
                block = handle.read(min(window_frames, total - start), dtype="float32", always_2d=True)
                if not np.isfinite(block).all():
                    raise AudioError(path, "contains NaN or infinite samples")
                samples = resample(block.mean(axis=1), rate, sample_rate)
                begin = start / rate
                speech = detect(samples, sample_rate, vad)
                cut = None if last else pause_cut(speech.pauses(), len(samples), sample_rate, vad)
                if cut is None:
                    next_start = start + step
                    owned_to = np.inf if last else begin + window - overlap / 2
                else:  # the next window starts at the pause: no overlap needed, no word crosses a pause
                    next_start = start + max(1, round(cut * rate / sample_rate))
                    owned_to, samples = next_start / rate, samples[:cut]
                regions = [(low, min(high, len(samples))) for low, high
                           in speech.regions(round(vad.pad_seconds * sample_rate)) if low < len(samples)]
                window_end = begin + len(samples) / sample_rate
                for index, (low, high) in enumerate(regions):
                    yield Segment(file, begin + low / sample_rate, (owned_from, owned_to), samples[low:high],
                                  last and index == len(regions) - 1, window_end)
                if last:
                    if not regions:
                        yield Segment(file, begin, (owned_from, owned_to), samples[:0], True, window_end)
                    return
                start, owned_from = next_start, owned_to
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, f"corrupt or truncated audio ({error})") from None


def pause_cut(pauses: list[tuple[int, int]], length: int, sample_rate: int, vad: VadOptions) -> int | None:
    """Where to end a window of `length` samples: in the latest pause of at least min_pause whose cut point
    falls in the window's last PAUSE_SEARCH_FRACTION; None when there is none (or the VAD is off).

    The cut is a pause's middle; for a pause still running at the window's end (the audio after it is
    unread) it is at least pad_seconds before the end, so speech starting right after still gets its padding.
    """
    shortest = round(vad.min_pause_seconds * sample_rate)
    pad = round(vad.pad_seconds * sample_rate)
    cuts = [max((a + b) // 2, b - pad) if b == length else (a + b) // 2
            for a, b in pauses if b - a >= shortest]
    cuts = [cut for cut in cuts if (1 - PAUSE_SEARCH_FRACTION) * length <= cut < length]
    return max(cuts) if vad.enabled and cuts else None


def transcribe(paths: list[str], model: RecognitionModel, decoder: Decoder, writer: OutputWriter,
               batch_size: int = BATCH_SIZE, window: float = WINDOW_SECONDS, overlap: float = OVERLAP_SECONDS,
               progress: bool = True, vad: VadOptions = DEFAULT_VAD) -> Summary:
    summary = Summary()
    start = time.perf_counter()
    todo = [p for p in paths if not writer.is_done(p)]
    summary.skipped = len(paths) - len(todo)
    durations = {}
    for path in todo:
        try:
            durations[path] = audio_info(path)[0]
        except AudioError:
            durations[path] = 0.0  # reported when it is read
    ordered = sorted(todo, key=lambda p: durations[p])  # similar lengths share batches
    results = [FileResult(path) for path in ordered]
    bar = tqdm(total=len(ordered), unit="file", disable=not progress, file=sys.stderr, desc="transcribing")

    def finish(result: FileResult) -> None:
        writer.write(result.row())
        if result.error:
            summary.failed += 1
            print(f"error: {result.error}", file=sys.stderr) if not progress else bar.write(f"error: {result.error}")
        else:
            summary.done += 1
            summary.audio_seconds += result.duration
        bar.update(1)
        elapsed = time.perf_counter() - start
        bar.set_postfix(audio_h=f"{summary.audio_seconds / 3600:.2f}",
                        rtf=f"{elapsed / summary.audio_seconds:.3f}" if summary.audio_seconds else "-")

    pending: list[Segment] = []
    for segment in _all_segments(results, model.sample_rate, window, overlap, vad, finish):
        pending.append(segment)
        if len(pending) == batch_size:
            _decode_batch(pending, results, model, decoder, finish)
            pending = []
    if pending:
        _decode_batch(pending, results, model, decoder, finish)
    bar.close()
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _all_segments(results: list[FileResult], sample_rate: int, window: float, overlap: float, vad: VadOptions,
                  finish) -> Iterator[Segment]:
    for index, result in enumerate(results):
        try:
            for segment in read_segments(result.path, index, sample_rate, window, overlap, vad):
                result.duration = max(result.duration, segment.window_end)
                yield segment
        except AudioError as error:
            result.error = str(error)
            finish(result)


def _decode_batch(segments: list[Segment], results: list[FileResult], model: RecognitionModel,
                  decoder: Decoder, finish) -> None:
    live = [s for s in segments if results[s.file].error is None]  # a later window of the file may have failed
    audible = [s for s in live if len(s.samples)]  # an empty segment only marks the end of a file without speech
    logits = iter(model.logits([s.samples for s in audible]) if audible else [])
    for segment in live:
        if len(segment.samples):
            _keep_words(segment, decoder.decode(next(logits), model.frame_seconds), results[segment.file])
        if segment.last:
            finish(results[segment.file])


def _keep_words(segment: Segment, transcript: Transcript, result: FileResult) -> None:
    low, high = segment.owned
    for word in transcript.words:
        shifted = Word(word.word, word.start + segment.offset, word.end + segment.offset, word.confidence)
        if low <= (shifted.start + shifted.end) / 2 < high:
            result.words.append(shifted)
