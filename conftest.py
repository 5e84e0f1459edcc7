"""Loads the harness's pytest plugin, which turns scenarios/**/*.yaml into test items."""

pytest_plugins = ["harness.pytest_plugin"]
