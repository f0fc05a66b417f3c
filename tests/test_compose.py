"""docker-compose.yml is valid Compose and declares the services the README documents."""

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"train", "transcribe", "evaluate", "tensorboard", "train-worker-0", "train-worker-1"}


def test_compose_file_is_valid_and_complete():
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run `make system-deps` (apt-get install docker-compose)"
    check = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    services = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "--services"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert set(services) == SERVICES
    rendered = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
                              capture_output=True, text=True, check=True).stdout
    assert "driver: nvidia" in rendered and "capabilities:" in rendered  # GPU reservation for `train`
    for index in (0, 1):
        marker = f'"task": {{"type": "worker", "index": {index}}}'
        assert marker in rendered, f"train-worker-{index} needs its TF_CONFIG"
    assert json.loads(rendered.split("TF_CONFIG: '")[1].split("'\n")[0])["cluster"]["worker"]
