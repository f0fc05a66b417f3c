"""The config object: overrides as people type them, and errors that name the key."""

import pytest

from asr.config import ConfigError, load_config


def test_numbers_in_exponent_form_are_read_as_numbers():
    # YAML 1.1 reads "1e-4" (no dot) as a string; a learning rate is usually written that way.
    config = load_config(None, ["optim.learning_rate=1e-4", "optim.weight_decay=5E-3", "optim.clip_norm=2"])
    assert (config.optim.learning_rate, config.optim.weight_decay, config.optim.clip_norm) == (1e-4, 5e-3, 2.0)


@pytest.mark.parametrize(("override", "message"), [
    ("optim.learning_rate=fast", "optim.learning_rate: expected a number, got 'fast'"),
    ("optim.learning_rate=true", "optim.learning_rate: expected a number, got True"),
    ("model.units=big", "model.units: expected int, got 'big'"),
    ("optim.learning_rate=-1e-3", "optim.learning_rate: must be positive"),
    ("model.colour=red", "unknown config key.*model.colour"),
])
def test_a_bad_value_names_its_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
