"""Plugins shipped with pipeline-ex that are not loaded by default (opt in by config)."""
