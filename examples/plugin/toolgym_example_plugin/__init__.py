"""An example ToolGym plugin: ``Example/Weather-v0``."""

import gymnasium


def register() -> None:
    """Called by ToolGym inside the plugin's namespace: ids carry no namespace here."""
    gymnasium.register(id="Weather-v0", entry_point="toolgym_example_plugin.weather:WeatherEnv")
