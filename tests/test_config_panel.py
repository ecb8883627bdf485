"""[panel]: session and lockout settings, their defaults and bounds, and the policy from them."""

from __future__ import annotations

import pytest

from callengine.config import ConfigError, PanelConfig, load_config
from callengine.services.base import LoginPolicy
from tests.test_config import ENV, write


def test_panel_defaults_and_policy(tmp_path):
    config = load_config(write(tmp_path, ""), env=ENV)
    assert config.panel == PanelConfig()
    policy = LoginPolicy.of(config.panel)
    assert (policy.idle_timeout_s, policy.absolute_timeout_s, policy.max_failures,
            policy.lockout_s) == (1800, 43200, 5, 900)
    config = load_config(write(tmp_path, "[panel]\nidle_timeout_s = 600\nmax_failures = 3\n"
                                         "secure_cookies = false\n"), env=ENV)
    assert (config.panel.idle_timeout_s, config.panel.max_failures,
            config.panel.secure_cookies) == (600.0, 3, False)


@pytest.mark.parametrize("text, problem", [
    ("idle_timeout_s = 5", "panel.idle_timeout_s"),
    ("absolute_timeout_s = 100", "panel.absolute_timeout_s"),
    ("max_failures = 0", "panel.max_failures"),
    ('secure_cookies = "no"', "panel.secure_cookies"),
    ("remember_me = true", "unknown key panel.remember_me"),
])
def test_panel_bounds(tmp_path, text, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(write(tmp_path, f"[panel]\n{text}\n"), env=ENV)
