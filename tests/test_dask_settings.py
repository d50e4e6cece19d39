"""hwsim.explore.DASK_SWEEP_CONFIG names real dask settings (a renamed key would be ignored silently)."""

import pytest

from hwsim.explore import DASK_SWEEP_CONFIG

distributed = pytest.importorskip("distributed")


def test_every_key_is_a_dask_setting_of_the_same_kind():
    import dask

    for key, value in DASK_SWEEP_CONFIG.items():
        default = dask.config.get(key)  # KeyError: not a setting of this dask.distributed
        assert type(default) is type(value), (key, default, value)


def test_the_settings_lengthen_or_stop_the_periodic_work():
    import dask
    from dask.utils import parse_timedelta

    for key, value in DASK_SWEEP_CONFIG.items():
        if isinstance(value, str):  # an interval: longer than dask's default
            assert parse_timedelta(value) > parse_timedelta(dask.config.get(key)), key
    with dask.config.set(DASK_SWEEP_CONFIG):
        assert dask.config.get("distributed.worker.profile.enabled") is False
        assert parse_timedelta(dask.config.get("distributed.admin.tick.interval")) == 0.2
