"""A run folder on an object store is locked per URI *and* endpoint: the same bucket and
path on two endpoints are two run folders, and one endpoint's is one run folder."""

from __future__ import annotations

import pytest

from metamix.base.errors import UserError
from metamix.base.runlock import run_lock
from metamix.base.storage import as_path, store_endpoint


def test_the_same_uri_on_two_endpoints_takes_two_locks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    run_dir = as_path("s3://metamix-runs/out/demo")   # no request is made
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/")
    assert store_endpoint(run_dir) == "http://127.0.0.1:9000"
    with run_lock(run_dir):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9001")
        with run_lock(run_dir):   # another store's folder: not this command's lock
            pass
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")  # wins, as in boto
        with pytest.raises(UserError, match=r"s3://metamix-runs/out/demo: another metamix "
                                            r"command \(PID \d+\) is writing"), \
                run_lock(run_dir):
            pass


def test_endpoints_come_from_each_schemes_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    assert store_endpoint("s3://metamix-runs/out") == ""      # AWS itself
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://localhost:4443")
    assert store_endpoint("s3://metamix-runs/out") == ""
    assert store_endpoint("gs://metamix-runs/out") == "http://localhost:4443"
    assert store_endpoint("/local/out") == ""
