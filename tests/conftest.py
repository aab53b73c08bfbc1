pytest_plugins = ["tests.fixtures.sim"]
