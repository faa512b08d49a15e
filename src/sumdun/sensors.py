"""The sensor table: band names, bit depth, ratio and MTF gains of the satellites we fuse.

Every number carries its source. MTF gains at Nyquist ("GNyq") are those of G. Vivone's
MATLAB pansharpening toolbox (``Tools/genMTF.m`` for MS, ``Tools/MTF_PAN.m`` for PAN, public copy
in ``liangjiandeng/DLPan-Toolbox``), used by Vivone et al., "A critical comparison among
pansharpening algorithms", TGRS 2015, and "A new benchmark based on recent advances in
multispectral pansharpening", GRSM 2021. Sensors the toolbox does not list (GaoFen-1/-2 and the
generic entry) take the toolbox defaults: 0.3 per MS band (``genMTF.m``, ``otherwise`` branch)
and 0.15 for PAN (``MTF_PAN.m``, ``'none'`` case).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Sensor", "SENSORS", "get_sensor", "list_sensors", "sensor_for_bands"]

_TOOLBOX = "Vivone MATLAB toolbox Tools/genMTF.m and Tools/MTF_PAN.m"
_TOOLBOX_DEFAULT = "toolbox defaults (genMTF.m 'otherwise': 0.3/band; MTF_PAN.m 'none': 0.15)"

BGRN = ("blue", "green", "red", "nir")
WV8 = ("coastal", "blue", "green", "yellow", "red", "red_edge", "nir1", "nir2")


@dataclass(frozen=True)
class Sensor:
    """One satellite's pansharpening constants.

    Attributes:
        key: canonical short name (``"wv3"``).
        name: display name (``"WorldView-3"``).
        band_names: MS band names in file order.
        bits: radiometric resolution of the delivered digital numbers (None = unknown).
        ratio: PAN/MS pixel-size ratio.
        ms_gnyq: MS MTF gain at the MS Nyquist frequency, one per band.
        pan_gnyq: PAN MTF gain at the Nyquist frequency of the MS grid (toolbox semantics).
        rgb: indices of the red, green, blue bands (for true-colour composites).
        nir: index of the (first) near-infrared band.
        toolbox_name: the string the MATLAB toolbox uses for this sensor.
        aliases: other accepted names.
        sources: where each constant comes from.
    """

    key: str
    name: str
    band_names: tuple[str, ...]
    bits: int | None
    ratio: int
    ms_gnyq: tuple[float, ...]
    pan_gnyq: float
    rgb: tuple[int, int, int]
    nir: int | None
    toolbox_name: str
    aliases: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def n_bands(self) -> int:
        return len(self.band_names)

    @property
    def max_value(self) -> float | None:
        """Largest digital number, ``2**bits - 1`` (the data range of the sensor's DN)."""
        return None if self.bits is None else float(2**self.bits - 1)

    def gains_for(self, n_bands: int) -> tuple[float, ...]:
        """MS MTF gains for an image with ``n_bands`` bands.

        The sensor's own gains when the count matches; for the 4-band (B, G, R, NIR) subset of an
        8-band WorldView sensor, the gains of those bands; for the generic entry, the default gain
        repeated. Anything else is an error naming the expected band counts.
        """
        if n_bands == self.n_bands:
            return self.ms_gnyq
        if self.key == "generic":
            return (self.ms_gnyq[0],) * n_bands
        if n_bands == 4 and self.n_bands == 8:
            return tuple(self.ms_gnyq[i] for i in self.subset4)
        raise ValueError(
            f"{self.name} images have {self.n_bands} bands (or 4 for the B,G,R,NIR subset of an "
            f"8-band sensor), got {n_bands}. Pass the right sensor, or sensor='generic'."
        )

    @property
    def subset4(self) -> tuple[int, int, int, int]:
        """Indices of blue, green, red, NIR in file order (the 4-band subset)."""
        names = self.band_names
        if self.n_bands == 4:
            return (0, 1, 2, 3)
        return (names.index("blue"), names.index("green"), names.index("red"), names.index("nir1"))


def _wv8(key, name, ms, pan, aliases, extra=""):
    return Sensor(
        key=key, name=name, band_names=WV8, bits=11, ratio=4, ms_gnyq=ms, pan_gnyq=pan,
        rgb=(4, 2, 1), nir=6, toolbox_name=key.upper(), aliases=aliases,
        sources={
            "band_names": "DigitalGlobe/Maxar spec sheet: Coastal, Blue, Green, Yellow, Red, Red Edge, NIR1, NIR2",
            "bits": "DigitalGlobe product spec: 11-bit MS and PAN" + extra,
            "ratio": "1.84 m / 0.46 m (WV-2), 1.24 m / 0.31 m (WV-3) nadir GSD",
            "gnyq": _TOOLBOX,
        },
    )


def _bgrn(key, name, bits, ms, pan, toolbox_name, aliases, gnyq_source=_TOOLBOX, bits_source=""):
    return Sensor(
        key=key, name=name, band_names=BGRN, bits=bits, ratio=4, ms_gnyq=ms, pan_gnyq=pan,
        rgb=(2, 1, 0), nir=3, toolbox_name=toolbox_name, aliases=aliases,
        sources={"band_names": "B, G, R, NIR file order (toolbox genMTF.m band-order comment)",
                 "bits": bits_source, "ratio": "4:1 PAN/MS GSD", "gnyq": gnyq_source},
    )


SENSORS: dict[str, Sensor] = {s.key: s for s in [
    _bgrn("qb", "QuickBird", 11, (0.34, 0.32, 0.30, 0.22), 0.15, "QB",
          ("quickbird", "qb2", "quickbird-2"), bits_source="DigitalGlobe: 11-bit"),
    _bgrn("ikonos", "IKONOS", 11, (0.26, 0.28, 0.29, 0.28), 0.17, "IKONOS",
          ("ik", "ikonos-2"), bits_source="GeoEye/Space Imaging: 11-bit"),
    _bgrn("ge1", "GeoEye-1", 11, (0.23, 0.23, 0.23, 0.23), 0.16, "GeoEye1",
          ("geoeye1", "geoeye", "geoeye-1", "ge-1"), bits_source="GeoEye: 11-bit"),
    _wv8("wv2", "WorldView-2", (0.35,) * 7 + (0.27,), 0.11, ("worldview2", "worldview-2", "wv-2")),
    _wv8("wv3", "WorldView-3", (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315), 0.14,
         ("worldview3", "worldview-3", "wv-3"), extra=" (SWIR 14-bit, not used here)"),
    _bgrn("wv4", "WorldView-4", 11, (0.23, 0.23, 0.23, 0.23), 0.16, "WV4",
          ("worldview4", "worldview-4", "wv-4"), bits_source="DigitalGlobe: 11-bit"),
    _bgrn("gf1", "GaoFen-1", 10, (0.3, 0.3, 0.3, 0.3), 0.15, "none",
          ("gaofen1", "gaofen-1", "gf-1"), gnyq_source=_TOOLBOX_DEFAULT,
          bits_source="Meng et al. 2021 benchmark (NBU_PansharpRSData): GF-1 10-bit"),
    _bgrn("gf2", "GaoFen-2", 10, (0.3, 0.3, 0.3, 0.3), 0.15, "none",
          ("gaofen2", "gaofen-2", "gf-2"), gnyq_source=_TOOLBOX_DEFAULT,
          bits_source="CRESDA GF-2 PMS: 10-bit"),
    Sensor(key="generic", name="Generic (unknown sensor)", band_names=BGRN, bits=None, ratio=4,
           ms_gnyq=(0.3, 0.3, 0.3, 0.3), pan_gnyq=0.15, rgb=(2, 1, 0), nir=3,
           toolbox_name="none", aliases=("none", "unknown", "default"),
           sources={"gnyq": _TOOLBOX_DEFAULT,
                    "band_names": "assumed B, G, R, NIR; any band count is accepted",
                    "bits": "unknown: pass the data range explicitly"}),
]}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.strip().lower())


_LOOKUP: dict[str, str] = {}
for _s in SENSORS.values():
    own = (_s.key, _s.name, *_s.aliases) + ((_s.toolbox_name,) if _s.toolbox_name != "none" else ())
    for _n in own:
        _LOOKUP.setdefault(_norm(_n), _s.key)


def get_sensor(name: str | Sensor) -> Sensor:
    """Look up a sensor by key or any common alias (case, spaces, ``-`` and ``_`` ignored).

    >>> get_sensor("WorldView-3").key
    'wv3'
    """
    if isinstance(name, Sensor):
        return name
    key = _LOOKUP.get(_norm(str(name)))
    if key is None:
        valid = ", ".join(f"{s.key} ({s.name})" for s in SENSORS.values())
        raise KeyError(f"unknown sensor {name!r}; valid sensors: {valid}")
    return SENSORS[key]


def list_sensors() -> list[Sensor]:
    """All sensors of the table, in table order."""
    return list(SENSORS.values())


def sensor_for_bands(sensor: str | Sensor | None, n_bands: int) -> Sensor:
    """The named sensor (checked against the band count), or the generic entry when None."""
    s = get_sensor("generic" if sensor is None else sensor)
    s.gains_for(n_bands)  # raises a clear error on a band-count mismatch
    return s
