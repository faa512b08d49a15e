import pytest

from sumdun.sensors import SENSORS, get_sensor, list_sensors, sensor_for_bands

# MTF gains at Nyquist as tabulated in ../shared/docs/CONVENTIONS.md (from the toolbox).
EXPECTED = {
    "qb": ((0.34, 0.32, 0.30, 0.22), 0.15),
    "ikonos": ((0.26, 0.28, 0.29, 0.28), 0.17),
    "ge1": ((0.23,) * 4, 0.16),
    "wv4": ((0.23,) * 4, 0.16),
    "wv2": ((0.35,) * 7 + (0.27,), 0.11),
    "wv3": ((0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315), 0.14),
    "gf1": ((0.3,) * 4, 0.15),
    "gf2": ((0.3,) * 4, 0.15),
    "generic": ((0.3,) * 4, 0.15),
}


@pytest.mark.parametrize("key", list(EXPECTED))
def test_gains_match_toolbox_table(key):
    s = get_sensor(key)
    assert s.ms_gnyq == pytest.approx(EXPECTED[key][0])
    assert s.pan_gnyq == pytest.approx(EXPECTED[key][1])


def test_table_has_every_required_sensor():
    names = {s.name for s in list_sensors()}
    for n in ("QuickBird", "IKONOS", "GeoEye-1", "WorldView-2", "WorldView-3", "WorldView-4",
              "GaoFen-1", "GaoFen-2"):
        assert n in names
    assert "generic" in SENSORS


@pytest.mark.parametrize("s", list_sensors(), ids=lambda s: s.key)
def test_entries_are_consistent(s):
    assert len(s.ms_gnyq) == s.n_bands == len(s.band_names)
    assert all(0 < g < 1 for g in s.ms_gnyq) and 0 < s.pan_gnyq < 1
    assert s.ratio == 4
    r, g, b = (s.band_names[i] for i in s.rgb)
    assert (r, g, b) == ("red", "green", "blue")
    assert s.band_names[s.nir].startswith("nir")
    assert {"gnyq", "bits", "band_names"} <= set(s.sources)


def test_bit_depths():
    assert get_sensor("wv3").bits == 11 and get_sensor("wv3").max_value == 2047
    assert get_sensor("gf1").bits == 10 and get_sensor("gf2").max_value == 1023
    assert get_sensor("generic").bits is None and get_sensor("generic").max_value is None


@pytest.mark.parametrize("alias", ["wv3", "WV3", "WorldView-3", "worldview3", "WorldView 3",
                                   "wv-3", "world_view-3"])
def test_aliases(alias):
    assert get_sensor(alias).key == "wv3"


@pytest.mark.parametrize("alias,key", [("QuickBird", "qb"), ("GeoEye1", "ge1"),
                                       ("GaoFen-2", "gf2"), ("IKONOS", "ikonos"),
                                       ("none", "generic")])
def test_more_aliases(alias, key):
    assert get_sensor(alias).key == key


def test_unknown_sensor_lists_valid_names():
    with pytest.raises(KeyError) as e:
        get_sensor("landsat9")
    msg = str(e.value)
    assert "landsat9" in msg and "wv3" in msg and "QuickBird" in msg


def test_four_band_subset_of_eight_band_sensor():
    s = get_sensor("wv3")
    assert [s.band_names[i] for i in s.subset4] == ["blue", "green", "red", "nir1"]
    assert s.gains_for(4) == (0.355, 0.360, 0.365, 0.335)
    assert get_sensor("wv2").gains_for(4) == (0.35, 0.35, 0.35, 0.35)


def test_band_count_mismatch_is_clear():
    with pytest.raises(ValueError, match="QuickBird images have 4 bands"):
        get_sensor("qb").gains_for(8)
    with pytest.raises(ValueError, match="sensor='generic'"):
        sensor_for_bands("wv3", 3)
    assert sensor_for_bands(None, 6).gains_for(6) == (0.3,) * 6
