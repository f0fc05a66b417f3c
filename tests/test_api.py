"""The Python API a user sees: `import asr` and what it makes possible."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "asr" / "assets" / "default_model" / "model.keras"


def test_import_asr_is_enough_for_a_plain_keras_load(tmp_path):
    # A fresh interpreter, so nothing imported by other tests registers the layers for us.
    script = ("import asr, keras\n"
              f"model = keras.saving.load_model({str(BUNDLED)!r}, safe_mode=True)\n"
              "print(sorted(t.name for t in model.inputs))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "['waveform', 'waveform_lengths']"
