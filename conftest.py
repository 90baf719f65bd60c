"""pytest in this repository: the package's plugin, loaded after coverage starts.

Its pytest11 entry point (which pyproject.toml's addopts turn off with
``-p no:omniq_trio``) would import omniq_trio before pytest-cov starts
measuring, so none of the package's module-level code would count as run.
Loaded from here instead, it serves tests/ and ``pytest examples/...`` alike.
"""

pytest_plugins = ("omniq_trio.testing.pytest_plugin",)
