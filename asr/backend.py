"""Import TensorFlow and Keras once, without the C++ start-up chatter on machines with no GPU.

TensorFlow's native logger writes "Could not find cuda drivers" and oneDNN notices to file descriptor 2
before any Python-side setting can silence it, so stderr is pointed at /dev/null for the import only.
Errors still surface: a failed import raises after stderr is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _silenced_stderr():
    if os.environ.get("ASR_VERBOSE_TF") or "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _silenced_stderr():
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices("GPU")  # the CUDA probe logs its "no driver" error here, while silenced

__all__ = ["keras", "tf"]
