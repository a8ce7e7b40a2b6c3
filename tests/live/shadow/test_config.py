from decimal import Decimal

import pytest

from rustybt.exceptions import ConfigError
from rustybt.live.shadow.config import ShadowTradingConfig


def test_spec_example_values_are_accepted_as_decimals():
    c = ShadowTradingConfig(
        enabled=True,
        signal_tolerance_pct=Decimal("0.05"),
        max_misalignment_count=3,
        execution_quality_threshold=Decimal("0.90"),
        track_slippage=True,
        track_latency=True,
    )
    assert c.signal_tolerance_pct == Decimal("0.05")
    assert c.to_dict()["execution_quality_threshold"] == "0.90"


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"signal_tolerance_pct": 0.05}, "not a float"),
        ({"signal_tolerance_pct": Decimal("1.5")}, "within [0, 1]"),
        ({"signal_tolerance_pct": "abc"}, "not a number"),
        ({"execution_quality_threshold": Decimal("-0.1")}, "within [0, 1]"),
        ({"max_misalignment_count": 0}, "int >= 1"),
        ({"max_misalignment_count": True}, "int >= 1"),
        ({"enabled": "yes"}, "True or False"),
    ],
)
def test_bad_values_raise_config_error_naming_the_parameter(kw, words):
    with pytest.raises(ConfigError) as err:
        ShadowTradingConfig(**kw)
    assert words in str(err.value)
    assert next(iter(kw)) in str(err.value)
