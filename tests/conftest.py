import pytest

pytest_plugins = ["tests.fixtures.sim", "tests.fixtures.outage"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first, otherwise in collection order: under pytest-xdist a long
    test started last would end the run alone while the other processes sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
