"""Root conftest: the harness's pytest plugin (options --testnet, --env, --exchange-url, --symbols).

Everything lives in harness/pytest_plugin.py so it can be tested with pytester and reused.
"""

pytest_plugins = ["harness.pytest_plugin"]
