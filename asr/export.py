"""Exporting a trained model for serving: TensorFlow SavedModel or TFLite, front end inside.

SavedModel signatures:
  serving_default(waveform float32 [B, N] in [-1, 1], waveform_lengths int32 [B]) -> logits, output_lengths
  serve_int16(pcm16 int16 [B, N], waveform_lengths int32 [B])                  -> logits, output_lengths
`config.yaml` and `alphabet.json` are written beside `saved_model.pb`, so `asr transcribe --model` reads it.
Export needs the network and its config only: a folder's decoding.yaml, vad.yaml and LM are not read (a
folder whose LM is missing exports all the same).
TFLite: batch fixed at 1 (the converter's condition for a BiLSTM), any length, built-in ops only:
  waveform float32 [1, N] -> logits [1, T, C]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from asr.backend import keras, tf
from asr.config import Config
from asr.model import build_inference_model
from asr.model_folder import EXPORT_FORMATS, is_savedmodel, model_source, write_config
from asr.recognizer import load_keras_model
from asr.utils import atomic_path, atomic_write

INT16_SCALE = 1.0 / 32768.0


class ExportError(ValueError):
    pass


def export(model_path: str | Path | None, fmt: str, out: str | Path) -> Path:
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    path = model_source(model_path)
    if is_savedmodel(path):
        raise ExportError(f"{path}: export starts from a .keras model (a run directory), "
                          "not from an already exported one")
    keras_model, config, _ = load_keras_model(path, waveform_input=True)
    out = Path(out)
    return export_savedmodel(keras_model, config, out) if fmt == "savedmodel" else export_tflite(keras_model, out)


class _Serving(tf.Module):
    def __init__(self, model: keras.Model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform"),
                                  tf.TensorSpec([None], tf.int32, name="waveform_lengths")])
    def serve(self, waveform, waveform_lengths):
        outputs = self.model({"waveform": waveform, "waveform_lengths": waveform_lengths}, training=False)
        return {"logits": outputs["logits"], "output_lengths": outputs["output_lengths"]}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int16, name="pcm16"),
                                  tf.TensorSpec([None], tf.int32, name="waveform_lengths")])
    def serve_int16(self, pcm16, waveform_lengths):
        return self.serve(tf.cast(pcm16, tf.float32) * INT16_SCALE, waveform_lengths)


def export_savedmodel(model: keras.Model, config: Config, out: Path) -> Path:
    if out.exists():
        raise ExportError(f"{out}: already exists; choose a new --out")
    module = _Serving(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tf.saved_model.save(module, str(staging), signatures={"serving_default": module.serve,
                                                               "serve_int16": module.serve_int16})
        write_config(staging, config)
        staging.rename(out)  # the folder appears whole or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def export_tflite(model: keras.Model, out: Path) -> Path:
    # TF's own graph-freezing utility; not in the public namespace, imported here after asr.backend set TF up.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32, name="waveform")])
    def serve(waveform):
        lengths = tf.shape(waveform)[1:2]
        return model({"waveform": waveform, "waveform_lengths": lengths}, training=False)["logits"]

    # Freeze the weights into constants first: the LSTM's while-loop body would otherwise read resource
    # variables, which the converter accepts but the TFLite interpreter cannot run (READ_VARIABLE fails).
    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # the converter raises a zoo of types; all mean "this graph did not convert"
        raise ExportError(f"TFLite conversion failed: {error}") from None
    with atomic_write(out, "wb") as handle:
        handle.write(flatbuffer)
    return out


def run_tflite(path: str | Path, waveform: np.ndarray) -> np.ndarray:
    """Logits [1, T, C] for one waveform from a TFLite export (used to check the export against Keras)."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [1, len(waveform)])
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, waveform[None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def save_keras_model(network: keras.Model, config: Config, path: Path, waveform_input: bool = True) -> None:
    """Save the final model atomically: waveform in (front end inside), or features in for feature corpora."""
    model = build_inference_model(network, config) if waveform_input else network
    with atomic_path(path, ".keras") as temporary:
        model.save(temporary)
