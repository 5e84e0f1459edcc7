"""Scenario files: the YAML model, the loader with line numbers, steps and expectations."""
