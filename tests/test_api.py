"""The Python API a user sees: `import asr` and what it makes possible."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "asr" / "assets" / "default_model" / "model.keras"


def fresh_python(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """A fresh interpreter, so that nothing other tests imported (layers, TensorFlow) is loaded already."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_reading_configs_manifests_text_and_the_cli_help_does_not_load_tensorflow(tmp_path):
    script = ("import contextlib, io, sys, asr, asr.config, asr.data, asr.frames, asr.text, asr.cli\n"
              f"asr.config.load_config({str(REPO / 'configs' / 'default.yaml')!r})\n"
              "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
              "    asr.cli.main(['--help'])  # every command's parser is built: `asr --help` stays quick\n"
              "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    result = fresh_python(script, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_import_asr_model_is_enough_for_a_plain_keras_load(tmp_path):
    script = ("import asr.model, keras\n"
              f"model = keras.saving.load_model({str(BUNDLED)!r}, safe_mode=True)\n"
              "print(sorted(t.name for t in model.inputs))\n")
    result = fresh_python(script, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['waveform', 'waveform_lengths']"


SAMPLES = REPO / "asr" / "samples" / "audio"


def test_load_model_transcribes_a_path_a_list_and_an_array():
    import numpy as np

    import asr
    from asr.audio import load_audio

    model = asr.load_model()  # the bundled model
    result = model.transcribe(SAMPLES / "0_nicolas_30.wav")
    assert result.text == "zero" and result.path.endswith("0_nicolas_30.wav")
    [word] = result.words
    assert word.word == "zero" and 0 <= word.start < word.end <= 0.7 and 0 < word.confidence <= 1
    samples = load_audio(SAMPLES / "2_theo_3.wav", 8000)
    assert model.transcribe(samples, sample_rate=8000).text == "two"
    silence = np.zeros(8000, np.float32)
    batch = model.transcribe([SAMPLES / "0_nicolas_30.wav", samples, silence, SAMPLES / "broken-truncated.wav"],
                             sample_rate=8000)
    assert [r.text for r in batch[:3]] == ["zero", "two", ""]  # in input order; no words in silence
    assert "truncated" in batch[3].error and batch[3].words == []


def speech_under_the_vad_floor():
    """A digit at -70 dBFS peak with silence around it: below the VAD's absolute floor, but the model normalises
    each utterance's level, so decoding it whole still gives words (the bundled model says nothing for noise)."""
    import numpy as np

    from asr.audio import load_audio

    clip = load_audio(SAMPLES / "2_theo_3.wav", 8000)
    clip = np.concatenate([np.zeros(2000, np.float32), clip, np.zeros(2000, np.float32)])
    return (clip / np.abs(clip).max() * 10 ** (-70 / 20)).astype(np.float32)


def test_transcribe_api_errors_and_options(tmp_path):
    import numpy as np
    import pytest

    import asr
    from asr.audio import AudioError

    model = asr.load_model()
    with pytest.raises(AudioError, match="missing.wav: file does not exist"):
        model.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="sample_rate is needed"):
        model.transcribe(np.zeros(100, np.float32))
    no_vad = asr.TranscribeOptions(vad=asr.VadOptions(method="off"))
    whisper = speech_under_the_vad_floor()
    assert model.transcribe(whisper, sample_rate=8000).text == ""  # the voice activity detector: no speech
    assert model.transcribe(whisper, sample_rate=8000, options=no_vad).text != ""  # decoded whole, it says something
    beam = model.transcribe(SAMPLES / "2_theo_3.wav", decoding=asr.DecodingOptions("beam", beam_width=4))
    assert beam.text == "two"


def test_the_transcription_core_uses_the_models_vad_settings():
    import dataclasses

    import asr
    from asr.decoders import make_decoder
    from asr.transcribe import AudioArray, transcribe

    model = asr.load_model()
    noise = AudioArray(speech_under_the_vad_floor(), 8000)
    decoder = make_decoder(model.config.alphabet())
    [with_vad] = transcribe([noise], model, decoder, progress=False)
    [without] = transcribe([noise], dataclasses.replace(model, vad=asr.VadOptions(method="off")), decoder,
                           progress=False)
    assert with_vad.text == "" and without.text != ""  # e.g. a model folder's vad.yaml saying "off"
