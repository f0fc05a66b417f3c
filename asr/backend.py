"""Import TensorFlow and Keras once, without the C++ start-up chatter on machines with no GPU.

TensorFlow's native logger writes "Could not find cuda drivers" and oneDNN notices to file descriptor 2
before any Python-side setting can silence it, so stderr is pointed at /dev/null for the import only.
Errors still surface: a failed import raises after stderr is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys

from asr.utils import silenced_stderr

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


_verbose = os.environ.get("ASR_VERBOSE_TF") or "tensorflow" in sys.modules
with contextlib.nullcontext() if _verbose else silenced_stderr():
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices("GPU")  # the CUDA probe logs its "no driver" error here, while silenced

__all__ = ["keras", "tf"]
