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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import AUDIO_EXTENSIONS, AudioError, audio_info, open_audio, resample, segment_frames
from asr.data import ManifestError, Utterance, read_manifest, segment_key
from asr.decoding import Decoder, Transcript, Word
from asr.vad import VadOptions, detect

if TYPE_CHECKING:  # only a type here: asr.recognizer imports this module for Recognizer.transcribe
    from asr.recognizer import Recognizer

WINDOW_SECONDS = 20.0
OVERLAP_SECONDS = 2.0
BATCH_SIZE = 16
PAUSE_SEARCH_FRACTION = 0.25  # a window may end at a pause in its last quarter: windows stay 75-100% full
DEFAULT_VAD = VadOptions()


@dataclass(frozen=True)
class TranscribeOptions:
    """How files are cut and batched, each default named once (how logits become text: `DecodingOptions`)."""

    batch_size: int = BATCH_SIZE  # segments per model call
    window: float = WINDOW_SECONDS  # seconds of audio read and decoded at once, at most
    overlap: float = OVERLAP_SECONDS  # seconds shared by neighbouring windows where no pause is found
    vad: VadOptions = DEFAULT_VAD

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 <= self.overlap < self.window:
            raise ValueError(f"overlap must be at least 0 and less than the window, got {self.overlap} and "
                             f"{self.window}")


@dataclass(frozen=True)
class AudioArray:
    """Audio already in memory, transcribed like a file: samples [n] or [n, channels] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    name: str = "<array>"  # what its result's `path` says

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


class _ArrayReader:
    """The part of `soundfile.SoundFile` that `read_segments` uses, over an `AudioArray`."""

    def __init__(self, audio: AudioArray):
        samples = np.asarray(audio.samples, dtype=np.float32)
        self.block = samples[:, None] if samples.ndim == 1 else samples
        self.samplerate, self.frames, self.position = audio.sample_rate, len(samples), 0

    def __enter__(self) -> _ArrayReader:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def seek(self, frame: int) -> None:
        self.position = frame

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        block = self.block[self.position:self.position + frames].astype(dtype)
        self.position += len(block)
        return block


@dataclass(frozen=True)
class AudioSegment:
    """`duration` seconds of a file from `offset` (a manifest row with an offset: a Kaldi segment, a lhotse
    supervision), transcribed as if it were the whole file; only that slice is read."""

    path: str
    offset: float
    duration: float

    @property
    def name(self) -> str:
        return segment_key(self.path, self.offset, self.duration)


class _SliceReader:
    """The part of `soundfile.SoundFile` that `read_segments` uses, over `frames` samples from `start`."""

    def __init__(self, handle: sf.SoundFile, start: int, frames: int):
        self.handle, self.start, self.frames, self.samplerate = handle, start, frames, handle.samplerate
        self.position = 0

    def __enter__(self) -> _SliceReader:
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def seek(self, frame: int) -> None:
        self.position = frame
        self.handle.seek(self.start + frame)

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        block = self.handle.read(max(0, min(frames, self.frames - self.position)), dtype=dtype, always_2d=always_2d)
        self.position += len(block)
        return block


Source = str | AudioArray | AudioSegment  # a path, audio in memory, or part of a file


def _open(source: Source):
    if isinstance(source, AudioSegment):
        handle = open_audio(source.path)
        try:
            start, frames = segment_frames(source.path, handle.frames, handle.samplerate, source.offset,
                                           source.duration)
        except AudioError:
            handle.close()
            raise
        return _SliceReader(handle, start, frames)
    if isinstance(source, AudioArray):
        if not source.sample_rate > 0 or len(source.samples) == 0:
            raise AudioError(source.name, f"needs samples and a positive sample rate, got {len(source.samples)} "
                                          f"samples at {source.sample_rate} Hz")
        return _ArrayReader(source)
    return open_audio(source)  # with the header checks: missing, empty, not audio, truncated, zero samples


def source_key(source: Source) -> str:
    """What tells an input's result apart: its path (or an array's name), a segment's `segment_key`."""
    return source if isinstance(source, str) else source.name


def _result(source: Source) -> FileResult:
    if isinstance(source, AudioSegment):
        return FileResult(source.path, source.duration, segment=(source.offset, source.duration))
    return FileResult(source_key(source))


def _duration(source: Source) -> float:
    try:
        return audio_info(source)[0] if isinstance(source, str) else source.duration
    except AudioError:
        return 0.0  # reported when it is read


@dataclass
class Segment:
    file_index: int  # which of the files being transcribed
    offset: float  # seconds from the start of the file
    owned: tuple[float, float]  # words whose midpoint (file time) falls here are kept
    samples: np.ndarray  # a speech region of the window (the whole window with the VAD off); may be empty
    last: bool
    window_end: float  # seconds: where the window this came from ends
    speech: tuple[tuple[float, float], ...] = ()  # file-time spans near speech: only words there are kept


@dataclass
class FileResult:
    """One input's transcript: its words with times (seconds) and confidences, or why it failed.

    For a segment of a file, `segment` is its (offset, duration) and word times are the file's (offset
    included), as the row's `audio_filepath` names the whole file.
    """

    path: str
    duration: float = 0.0
    words: list[Word] = field(default_factory=list)
    error: str | None = None
    segment: tuple[float, float] | None = None

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)

    @property
    def key(self) -> str:
        return segment_key(self.path, *self.segment) if self.segment else self.path

    def row(self) -> dict:
        where = {"audio_filepath": self.path}
        if self.segment:  # the declared segment, so that the row matches its manifest row
            where |= {"offset": round(self.segment[0], 4), "duration": round(self.segment[1], 4)}
        if self.error is not None:
            return {**where, "error": self.error}
        return {"audio_filepath": self.path, "duration": round(self.duration, 3), **where,
                "text": self.text,
                "words": [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3),
                           "confidence": round(w.confidence, 4)} for w in self.words]}


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add(self, row: dict) -> None:
        """Count one output row (`FileResult.row()`): failed, or done with its audio."""
        if "error" in row:
            self.failed += 1
        else:
            self.done += 1
            self.audio_seconds += row["duration"]

    def describe(self) -> str:
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0
        rtf = self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0
        skipped = f", {self.skipped} already done (--resume)" if self.skipped else ""
        return (f"{self.done} transcribed, {self.failed} failed{skipped}; {self.audio_seconds / 3600:.3f} h of audio "
                f"in {self.wall_seconds:.1f} s: RTF {rtf:.4f} ({speed:.0f}× real time)")


def expand_inputs(inputs: Iterable[str]) -> list[Source]:
    """Files, folders (searched recursively for audio), glob patterns and manifests -> inputs to transcribe:
    paths, and a manifest row with an offset as that `AudioSegment` of its file.

    A name that matches nothing is kept, so it is reported as a failed input rather than vanishing.
    """
    sources: list[Source] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            sources += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        elif path.suffix == ".jsonl" and path.is_file():
            try:
                sources += manifest_sources(read_manifest(path))
            except ManifestError as error:
                raise ValueError(str(error)) from None
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            sources += matches or [item]
        else:
            sources.append(item)
    return _each_once(sources)


def manifest_sources(rows: Iterable[Utterance]) -> list[Source]:
    """Each row's audio once: its file, or the segment of it that a row with an offset names (rows sharing a
    recording without offsets are all scored against its one transcript)."""
    sources = (row.audio_filepath if row.offset is None else AudioSegment(row.audio_filepath, row.offset,
                                                                            row.duration)
               for row in rows if row.audio_filepath)
    return _each_once(sources)


def _each_once(sources: Iterable[Source]) -> list[Source]:
    """Each input once (by `source_key`), in order, the first occurrence winning."""
    unique: dict[str, Source] = {}
    for source in sources:
        unique.setdefault(source_key(source), source)
    return list(unique.values())


def read_segments(source: Source, file_index: int, sample_rate: int, window: float = WINDOW_SECONDS,
                  overlap: float = OVERLAP_SECONDS, vad: VadOptions = DEFAULT_VAD) -> Iterator[Segment]:
    """The speech of the file, window by window, at `sample_rate`; raises AudioError on unusable audio.

    At most one window of audio is read at a time. The file's last segment has `last` set; it is an empty
    one when the last window holds no speech, so that the file is still finished (with no words).
    """
    path = source_key(source)
    try:
        with _open(source) as handle:
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
                regions = _clipped(speech.regions(round(vad.context_seconds * sample_rate)), len(samples))
                near_speech = tuple((begin + low / sample_rate, begin + high / sample_rate) for low, high
                                    in _clipped(speech.regions(round(vad.pad_seconds * sample_rate)), len(samples)))
                window_end = begin + len(samples) / sample_rate
                for index, (low, high) in enumerate(regions):
                    yield Segment(file_index, begin + low / sample_rate, (owned_from, owned_to), samples[low:high],
                                  last and index == len(regions) - 1, window_end, near_speech)
                if last:
                    if not regions:
                        yield Segment(file_index, begin, (owned_from, owned_to), samples[:0], True, window_end)
                    return
                start, owned_from = next_start, owned_to
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(path, f"corrupt or truncated audio ({error})") from None


def _clipped(regions: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    return [(low, min(high, length)) for low, high in regions if low < length]


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


def transcribe(inputs: list[Source], model: Recognizer, decoder: Decoder,
               options: TranscribeOptions | None = None, progress: bool = True) -> Iterator[FileResult]:
    """Transcribe files (or `AudioArray`s), yielding each result as soon as it is complete, shortest first.

    An input that cannot be read yields a result with `error` set; the others go on. Writing the results is
    the caller's job (`asr transcribe` writes rows as they come, so an interruption loses nothing).
    """
    options = options or TranscribeOptions(vad=model.vad)  # the model folder's vad.yaml, if it has one
    ordered = sorted(inputs, key=_duration)  # similar lengths share batches
    results = [_result(source) for source in ordered]
    finished: list[FileResult] = []
    pending: list[Segment] = []
    with tqdm(total=len(ordered), unit="file", disable=not progress, file=sys.stderr, desc="transcribing") as bar:
        for segment in _all_segments(ordered, results, model.sample_rate, options, finished.append):
            pending.append(segment)
            if len(pending) == options.batch_size:
                _decode_batch(pending, results, model, decoder, finished.append)
                pending = []
            yield from _drain(finished, bar)
        if pending:
            _decode_batch(pending, results, model, decoder, finished.append)
        yield from _drain(finished, bar)


def _drain(finished: list[FileResult], bar: tqdm) -> Iterator[FileResult]:
    for result in finished:
        bar.update(1)
        yield result
    finished.clear()


def _all_segments(sources: list[Source], results: list[FileResult], sample_rate: int, options: TranscribeOptions,
                  finish) -> Iterator[Segment]:
    for index, (source, result) in enumerate(zip(sources, results, strict=True)):
        try:
            for segment in read_segments(source, index, sample_rate, options.window, options.overlap,
                                         options.vad):
                result.duration = max(result.duration, segment.window_end)
                yield segment
        except AudioError as error:
            result.error = str(error)
            finish(result)


def _decode_batch(segments: list[Segment], results: list[FileResult], model: Recognizer,
                  decoder: Decoder, finish) -> None:
    live = [s for s in segments if results[s.file_index].error is None]  # a later window of the file may have failed
    audible = [s for s in live if len(s.samples)]  # an empty segment only marks the end of a file without speech
    logits = iter(model.logits([s.samples for s in audible]) if audible else [])
    for segment in live:
        if len(segment.samples):
            _keep_words(segment, decoder.decode(next(logits), model.frame_seconds), results[segment.file_index])
        if segment.last:
            finish(results[segment.file_index])


def _keep_words(segment: Segment, transcript: Transcript, result: FileResult) -> None:
    low, high = segment.owned
    for word in transcript.words:
        shifted = Word(word.word, word.start + segment.offset, word.end + segment.offset, word.confidence)
        middle = (shifted.start + shifted.end) / 2
        # A word's characters can fire well before or after its middle (CTC spikes sit anywhere in the sound, and
        # unvoiced onsets and plosives fall outside the voiced core the VAD anchors on): it is kept when any
        # of it meets speech, so "stop" whose middle falls in the silent "st" is not lost.
        if low <= middle < high and any(shifted.start < end and start < shifted.end for start, end in segment.speech):
            result.words.append(_in_file_time(shifted, result))


def _in_file_time(word: Word, result: FileResult) -> Word:
    """A segment's word in the time of the whole file, as its row names the file."""
    if not result.segment:
        return word
    return Word(word.word, word.start + result.segment[0], word.end + result.segment[0], word.confidence)
