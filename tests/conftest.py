import pytest

pytest_plugins = ["tests.fixtures.sim", "tests.fixtures.outage"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first, otherwise in collection order: under pytest-xdist a long
    test started last would end the run alone while the other processes sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    _group_node_ids(config, items)


def _group_node_ids(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` sends the tests whose node id ends in ``@<xdist_group>`` to one
    process. pytest-xdist 3.8 appends the suffix to ``item._nodeid``, which pytest 9 no longer
    reads (the id is ``item._id``), so no group held together: here the suffix is appended
    where pytest 9 reads it, for the tests that lack it."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                  for mark in item.iter_markers("xdist_group")}  # fmt: skip
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(sorted(groups))}")
