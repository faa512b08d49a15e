"""What ``sumdun fuse-batch`` fuses: scene pairs from a CSV, a YAML list, a folder or STAC.

Four kinds of manifest, told apart by what the path is:

- **CSV** (``.csv``): a header with ``ms`` and ``pan`` columns, optional ``id``, ``sensor``,
  ``method``, ``ratio`` and ``out`` (output file name or path); empty cells take the command's
  defaults.
- **YAML** (``.yaml`` / ``.yml``): a list of mappings with the same keys (plus ``options``, a
  mapping of method options), or a mapping with ``scenes:`` (that list) and ``defaults:``.
- **Folder**: searched recursively; MS and PAN files are told apart by glob patterns
  (case-insensitive; default ``*ms*.tif``, ``*mul*.tif`` and ``*pan*.tif``, ``.tiff`` too)
  and paired when what the ``*`` of both patterns matched is the same (``city_MS.tif`` with
  ``city_PAN.tif``, ``MUL_img1.tif`` with ``PAN_img1.tif``), else when a folder holds exactly
  one MS and one PAN left (PAirMax's ``MS_LR.tif`` and ``PAN.tif``).
- **STAC** (``.json`` / ``.geojson``): an ItemCollection (or one Item) whose items carry an
  MS and a PAN asset: the asset keys given, else keys such as ``ms`` / ``multispectral`` and
  ``pan`` / ``panchromatic``, else by ``eo:bands`` (one band ``pan``; several bands). The
  sensor comes from ``constellation``, ``platform`` or ``sumdun:sensor`` when sumdun knows it.

Relative paths are relative to the manifest's folder. Files are not opened here: a missing
or corrupt one fails its own scene when the batch runs, never the others.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

__all__ = ["Scene", "read_manifest", "DEFAULT_MS_GLOBS", "DEFAULT_PAN_GLOBS"]

DEFAULT_MS_GLOBS = ("*ms*.tif", "*ms*.tiff", "*mul*.tif", "*mul*.tiff")
DEFAULT_PAN_GLOBS = ("*pan*.tif", "*pan*.tiff")
COLUMNS = ("id", "ms", "pan", "sensor", "method", "ratio", "out", "options")
_MS_KEYS = ("ms", "multispectral", "mul", "msi", "mss")
_PAN_KEYS = ("pan", "panchromatic", "p")


@dataclass
class Scene:
    """One pair to fuse; ``None`` fields take the command's defaults. ``problem`` is set when
    the manifest itself says the pair cannot be fused (an unpaired file), and the scene is
    reported as failed with it."""

    id: str
    ms: str
    pan: str
    sensor: str | None = None
    method: str | None = None
    ratio: int | None = None
    out: str | None = None
    options: dict = field(default_factory=dict)
    problem: str | None = None


def read_manifest(path: str | Path, ms_globs=None, pan_globs=None, ms_asset: str | None = None,
                  pan_asset: str | None = None) -> list[Scene]:
    """The scenes of a CSV, YAML, folder or STAC manifest (see the module docs), ids unique."""
    p = Path(path)
    if p.is_dir():
        scenes = _from_folder(p, ms_globs or DEFAULT_MS_GLOBS, pan_globs or DEFAULT_PAN_GLOBS)
    elif not p.exists():
        raise UsageError(f"manifest not found: {p}; give a CSV, YAML or STAC JSON file or a "
                         "folder of MS and PAN files")
    elif p.suffix.lower() == ".csv":
        scenes = _from_rows(_csv_rows(p), p.parent, str(p))
    elif p.suffix.lower() in (".yaml", ".yml"):
        scenes = _from_yaml(p)
    elif p.suffix.lower() in (".json", ".geojson"):
        scenes = _from_stac(p, ms_asset, pan_asset)
    else:
        raise UsageError(f"cannot tell the manifest type of {p.name}: name it .csv, .yaml or "
                         ".json (STAC), or give a folder")
    if not scenes:
        raise UsageError(f"the manifest {p} lists no scene pair")
    return _unique_ids(scenes)


def _unique_ids(scenes: list[Scene]) -> list[Scene]:
    seen: dict[str, int] = {}
    for s in scenes:
        s.id = re.sub(r"[^\w.-]+", "_", s.id).strip("._") or "scene"
        n = seen.get(s.id, 0)
        seen[s.id] = n + 1
        if n:
            s.id = f"{s.id}_{n + 1}"
    return scenes


def _resolve(base: Path, href: str) -> str:
    if href.startswith("file://"):
        href = href[len("file://"):]
    if re.match(r"^[a-z][a-z0-9+.-]*://", href) or href.startswith("/vsi"):
        return href  # a URL: rasterio / GDAL reads it
    q = Path(href).expanduser()
    return str(q if q.is_absolute() else base / q)


def _csv_rows(p: Path) -> list[dict]:
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()}
                for r in reader]
        header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("ms", "pan") if c not in header]
    if missing:
        raise UsageError(f"{p.name}: the CSV header needs columns ms and pan (missing "
                         f"{', '.join(missing)}); optional: id, sensor, method, ratio, out")
    return rows


def _from_yaml(p: Path) -> list[Scene]:
    import yaml

    from .._yaml import load_yaml

    try:
        doc = load_yaml(p.read_text(), p.name)
    except yaml.YAMLError as err:
        raise UsageError(f"{p.name} is not valid YAML: {err}") from None
    defaults = {}
    if isinstance(doc, dict):
        defaults = doc.get("defaults") or {}
        doc = doc.get("scenes")
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise UsageError(f"{p.name}: expected a list of scenes (mappings with ms and pan), or "
                         "a mapping with scenes: and defaults:")
    return _from_rows([{**defaults, **r} for r in doc], p.parent, str(p))


def _from_rows(rows: list[dict], base: Path, where: str) -> list[Scene]:
    scenes = []
    for k, r in enumerate(rows, start=1):
        r = {str(key).strip().lower(): v for key, v in r.items() if key is not None}
        unknown = sorted(set(r) - set(COLUMNS))
        if unknown:
            raise UsageError(f"{where}, scene {k}: unknown field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(COLUMNS)}")
        if not r.get("ms") or not r.get("pan"):
            raise UsageError(f"{where}, scene {k}: needs both ms and pan paths")
        ratio = r.get("ratio")
        if ratio not in (None, ""):
            try:
                ratio = int(ratio)
            except (TypeError, ValueError):
                raise UsageError(f"{where}, scene {k}: ratio must be an integer, got "
                                 f"{ratio!r}") from None
        options = r.get("options") or {}
        if not isinstance(options, dict):
            raise UsageError(f"{where}, scene {k}: options must be a mapping, e.g. "
                             "options: {block: 64}")
        ms = _resolve(base, str(r["ms"]))
        scenes.append(Scene(id=str(r.get("id") or Path(ms).stem), ms=ms,
                            pan=_resolve(base, str(r["pan"])), sensor=r.get("sensor") or None,
                            method=r.get("method") or None, ratio=ratio or None,
                            out=r.get("out") or None, options=dict(options)))
    return scenes


def _glob_regex(pattern: str) -> re.Pattern:
    """A case-insensitive regex for a glob whose ``*`` are capture groups."""
    parts = [_literal(c) for c in pattern.split("*")]
    return re.compile("^" + "(.*)".join(parts) + "$", re.IGNORECASE)


def _literal(chunk: str) -> str:
    return "".join("." if ch == "?" else re.escape(ch) for ch in chunk)


def _key(match: re.Match) -> tuple:
    return tuple(g.strip("_-. ").lower() for g in match.groups())


def _from_folder(folder: Path, ms_globs, pan_globs) -> list[Scene]:
    ms_re = [_glob_regex(g) for g in ms_globs]
    pan_re = [_glob_regex(g) for g in pan_globs]
    ms_files: dict[tuple, Path] = {}
    pan_files: dict[tuple, Path] = {}
    scenes: list[Scene] = []
    for f in sorted(q for q in folder.rglob("*") if q.is_file()):
        if any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue  # hidden folders: sumdun's own temporary files among them
        m_ms = next((m for r in ms_re if (m := r.match(f.name))), None)
        m_pan = next((m for r in pan_re if (m := r.match(f.name))), None)
        rel = f.relative_to(folder)
        if m_ms and m_pan:
            scenes.append(Scene(id=f.stem, ms=str(f), pan=str(f), problem=(
                f"{rel} matches both the MS and the PAN patterns; rename it or pass "
                "--ms-glob / --pan-glob")))
        elif m_ms:
            ms_files[(str(rel.parent),) + _key(m_ms)] = f
        elif m_pan:
            pan_files[(str(rel.parent),) + _key(m_pan)] = f
    per_dir = {}  # MS and PAN files each folder holds before any pairing
    for role, files in ((0, ms_files), (1, pan_files)):
        for k in files:
            per_dir.setdefault(k[0], [0, 0])[role] += 1
    for key in sorted(set(ms_files) & set(pan_files)):
        ms, pan = ms_files.pop(key), pan_files.pop(key)
        scenes.append(Scene(id=_folder_id(folder, ms, key), ms=str(ms), pan=str(pan)))
    # a folder holding one MS and one PAN file is a pair whatever their names
    for d in sorted({k[0] for k in ms_files} & {k[0] for k in pan_files}):
        ms_k = [k for k in ms_files if k[0] == d]
        pan_k = [k for k in pan_files if k[0] == d]
        if per_dir[d] == [1, 1]:
            ms, pan = ms_files.pop(ms_k[0]), pan_files.pop(pan_k[0])
            scenes.append(Scene(id=_folder_id(folder, ms, (d,)), ms=str(ms), pan=str(pan)))
    for role, left, other in (("MS", ms_files, "PAN"), ("PAN", pan_files, "MS")):
        for f in left.values():
            scenes.append(Scene(id=f.stem, ms=str(f), pan=str(f), problem=(
                f"{f.relative_to(folder)}: no {other} file pairs with this {role} file; check "
                "the names or pass --ms-glob / --pan-glob")))
    return scenes


def _folder_id(folder: Path, ms: Path, key: tuple) -> str:
    """A scene id: the name the two files share, else their folder."""
    name = "_".join(w for w in key[1:] if w)  # what the patterns' * matched
    rel_dir = "" if key[0] == "." else key[0].replace("/", "_")
    return name or rel_dir or ms.stem


def _from_stac(p: Path, ms_key: str | None, pan_key: str | None) -> list[Scene]:
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{p.name} is not valid JSON: {err}") from None
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        items = doc.get("features") or []
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    else:
        raise UsageError(f"{p.name}: expected a STAC ItemCollection (type FeatureCollection) "
                         "or Item (type Feature)")
    from ..sensors import get_sensor

    scenes = []
    for k, item in enumerate(items, start=1):
        sid = str(item.get("id") or f"item{k}")
        assets = item.get("assets") or {}
        props = item.get("properties") or {}
        ms = _pick_asset(assets, ms_key, _MS_KEYS, pan=False)
        pan = _pick_asset(assets, pan_key, _PAN_KEYS, pan=True)
        sensor = None
        for name in (props.get("sumdun:sensor"), props.get("constellation"),
                     props.get("platform")):
            if name:
                try:
                    sensor = get_sensor(str(name)).key
                    break
                except KeyError:
                    continue
        if ms is None or pan is None:
            which = " and ".join(r for r, a in (("MS", ms), ("PAN", pan)) if a is None)
            scenes.append(Scene(id=sid, ms="", pan="", problem=(
                f"STAC item {sid}: no {which} asset among {', '.join(assets) or 'none'}; pass "
                "--ms-asset / --pan-asset KEY")))
            continue
        scenes.append(Scene(id=sid, ms=_resolve(p.parent, ms), pan=_resolve(p.parent, pan),
                            sensor=sensor))
    return scenes


def _pick_asset(assets: dict, key: str | None, names, pan: bool) -> str | None:
    if key is not None:
        a = assets.get(key)
        return a.get("href") if isinstance(a, dict) else None
    for k, a in assets.items():
        if k.lower() in names and isinstance(a, dict) and a.get("href"):
            return a["href"]
    for a in assets.values():
        if not isinstance(a, dict) or not a.get("href"):
            continue
        bands = a.get("eo:bands") or a.get("bands") or []
        if pan and len(bands) == 1 and any(
                "pan" in str(b.get(f, "")).lower() for b in bands for f in ("common_name",
                                                                              "name")):
            return a["href"]
        if not pan and len(bands) > 1:
            return a["href"]
    return None
