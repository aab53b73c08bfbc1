"""The Faust internals the worker relies on exist in the installed Faust, or a worker refuses."""

from __future__ import annotations

import logging

import pytest

from chronox_stream.runtime import faust_shims


def test_every_internal_the_shims_rely_on_exists_in_the_installed_faust() -> None:
    assert faust_shims.missing() == []
    faust_shims.check()


def test_a_faust_without_one_of_them_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = (*faust_shims.INTERNALS, (faust_shims.Web, "_renamed_in_a_later_release"))
    monkeypatch.setattr(faust_shims, "INTERNALS", gone)
    with pytest.raises(RuntimeError, match="Web._renamed_in_a_later_release"):
        faust_shims.check()


def test_an_unchecked_faust_version_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(faust_shims, "version", lambda name: "0.99.0")
    with caplog.at_level(logging.WARNING, logger=faust_shims.__name__):
        faust_shims.check()
    assert "faust-streaming 0.99.0 has not been checked" in caplog.text
