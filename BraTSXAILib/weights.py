"""Trained weights: the registry of known models, where their files live, and safe loading.

A model is named by a registry id (`unet-brats18-w16`), by an architecture (`unet`, `resunet`, `attunet`: the
registry's default entry for it), by `all` (the default entry of every architecture that has one), or by a path
to a weights file. A registry entry's file is looked for beside the registry (`Resources/Models/` for the bundled
one, or `<prefix>/share/brats-xai/Models/` after a wheel install; env `BRATSXAI_REGISTRY` names another registry)
and then in the user cache folder (env `BRATSXAI_MODELS`, else `~/.cache/brats-xai/models`). Their sha256 must
match the registry before they are opened, and they are always opened with `torch.load(weights_only=True)`, so a
file can hold tensors, never code. torch is imported only to open or save a file: a model run from OpenVINO's
cache is described by the header recorded there (`model_info`) once its file's sha256 matches the registry.
"""
from __future__ import annotations

import hashlib
import os
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .choices import ARCHITECTURES
from .errors import InputError
from .outputs import atomic_write, read_json
from .postprocess import LabelRule
from .preprocess import NORMALISATIONS

REGISTRY_FORMAT = "brats-xai-registry/1"
SOURCE_MODELS = Path(__file__).resolve().parents[1] / "Resources" / "Models"  # checkout, editable install, Slicer
INSTALLED_MODELS = Path("share") / "brats-xai" / "Models"  # under the install prefix, where a wheel puts them

if TYPE_CHECKING:
    import torch


def bundled_models_dir(source: Path = SOURCE_MODELS,
                       prefixes: tuple[Path, ...] = (Path(sys.prefix), Path(site.USER_BASE or sys.prefix))) -> Path:
    """Resources/Models beside the package if it holds a registry, else the copy a wheel installed under a prefix
    (the environment's, then the user's); the source folder when neither has one, so messages name a real place."""
    candidates = [source] + [prefix / INSTALLED_MODELS for prefix in prefixes]
    return next((folder for folder in candidates if (folder / "registry.json").is_file()), source)


BUNDLED_DIR = bundled_models_dir()
REGISTRY_ENV = "BRATSXAI_REGISTRY"
CACHE_ENV = "BRATSXAI_MODELS"
WEIGHTS_SUFFIXES = (".pt", ".pth")


@dataclass
class RegistryEntry:
    """One model the registry knows about; its file may or may not be on this computer."""

    id: str
    architecture: str
    width: int
    spacing: tuple[float, float, float] | None
    sha256: str
    folder: Path
    file: str | None = None
    url: str | None = None
    default: bool = False
    trained_on: str = ""
    validation: dict = field(default_factory=dict)
    rule: LabelRule = field(default_factory=LabelRule)
    normalisation: str | None = None
    quality: dict = field(default_factory=dict)  # region -> (a, b): expected Dice = a + b × soft Dice
    explain: dict = field(default_factory=dict)  # region -> {"layer", "method"} or {"none": why}

    @property
    def file_name(self) -> str:
        return self.file or Path(urlparse(self.url or "").path).name


@dataclass
class ModelInfo:
    """What the pipeline and the manifest need to know about a loaded model."""

    id: str
    architecture: str
    width: int
    spacing: tuple[float, float, float] | None
    normalisation: str
    patch_size: tuple[int, int, int] | None
    sha256: str
    path: Path
    training: dict = field(default_factory=dict)
    rule: LabelRule = field(default_factory=LabelRule)
    registry: Path | None = None  # the registry it was found in (None for a weights file given by path)
    quality: dict = field(default_factory=dict)  # calibration of the expected Dice (uncertainty.expected_dice)
    explain: dict = field(default_factory=dict)  # default Grad-CAM layer and method per region (explain_defaults)

    def manifest_entry(self) -> dict:
        return {"id": self.id, "sha256": self.sha256, "architecture": self.architecture, "width": self.width,
                "labels": self.rule.to_dict()}

    def header(self) -> dict:
        """The weights file's description of the network, as saved in it: what `model_info` reads (with the
        file's own label rule for a file given by path, which no registry entry records)."""
        header = {"architecture": self.architecture, "width": self.width,
                  "spacing": list(self.spacing) if self.spacing else None, "normalisation": self.normalisation,
                  "patch_size": list(self.patch_size) if self.patch_size else None}
        return header if self.registry is not None else {**header, "labels": self.rule.to_dict()}


def registry_path() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or BUNDLED_DIR / "registry.json").expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "brats-xai" / "models").expanduser()


def _spacing(value, where: Path) -> tuple[float, float, float] | None:
    if value is None:
        return None
    if len(value) != 3 or not all(isinstance(v, (int, float)) and v > 0 for v in value):
        raise InputError(f"spacing {value!r} is not three positive numbers (z, y, x mm)", "fix the entry", where)
    return tuple(float(v) for v in value)


def _entry(raw: dict, where: Path) -> RegistryEntry:
    missing = [key for key in ("id", "architecture", "width", "sha256") if key not in raw]
    if missing or not (raw.get("file") or raw.get("url")):
        what = ", ".join(missing) if missing else "file or url"
        raise InputError(f"registry entry {raw.get('id', '?')!r} lacks {what}", "fix the registry entry", where)
    if raw["architecture"] not in ARCHITECTURES:
        raise InputError(
            f"registry entry {raw['id']!r} names unknown architecture {raw['architecture']!r}",
            f"use one of {', '.join(ARCHITECTURES)}",
            where,
        )
    return RegistryEntry(
        id=raw["id"],
        architecture=raw["architecture"],
        width=int(raw["width"]),
        spacing=_spacing(raw.get("spacing"), where),
        sha256=raw["sha256"].lower(),
        folder=where.parent,
        file=raw.get("file"),
        url=raw.get("url"),
        default=bool(raw.get("default", False)),
        trained_on=raw.get("trained_on", ""),
        validation=raw.get("validation", {}),
        rule=LabelRule.from_dict(raw.get("labels")),
        normalisation=raw.get("normalisation"),
        quality=raw.get("quality", {}),
        explain=raw.get("explain", {}),
    )


def load_registry(path: str | Path | None = None) -> list[RegistryEntry]:
    """The registry's entries, in file order; an absent registry file is an empty registry."""
    path = Path(path) if path is not None else registry_path()
    if not path.exists():
        return []
    data = read_json(path, "model registry", "restore the file", "restore or fix the file")
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT or not isinstance(data.get("models"), list):
        raise InputError(
            "the model registry is not in the expected format",
            f'expected {{"format": "{REGISTRY_FORMAT}", "models": [...]}}',
            path,
        )
    entries = [_entry(raw, path) for raw in data["models"]]
    ids = [entry.id for entry in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"the model registry lists {', '.join(duplicates)} more than once", "keep ids unique", path)
    return entries


def ensemble_entry(member_ids: list[str], path: str | Path | None = None) -> dict | None:
    """The registry's record of the mean of exactly these models (label rule, quality calibration), if any."""
    path = Path(path) if path is not None else registry_path()
    if not path.is_file():
        return None
    return next((ensemble for ensemble in read_json(path, "model registry", "restore the file").get("ensembles", [])
                 if sorted(ensemble.get("members", [])) == sorted(member_ids)), None)


def ensemble_rule(member_ids: list[str], path: str | Path | None = None) -> LabelRule | None:
    """The label rule calibrated for the mean of exactly these registry models, if the registry has one."""
    entry = ensemble_entry(member_ids, path)
    return LabelRule.from_dict(entry.get("labels")) if entry else None


def default_entry(architecture: str, entries: list[RegistryEntry]) -> RegistryEntry | None:
    """The entry flagged `"default": true` for an architecture, else its first entry, else None."""
    candidates = [entry for entry in entries if entry.architecture == architecture]
    return next((entry for entry in candidates if entry.default), candidates[0] if candidates else None)


def _looks_like_path(selector: str) -> bool:
    return selector.lower().endswith(WEIGHTS_SUFFIXES) or os.sep in selector or Path(selector).is_file()


def _no_weights(what: str) -> InputError:
    return InputError(
        f"no trained weights are installed for {what}: the model registry lists none yet",
        "train one with the training/ toolkit and register it, or pass --model path/to/weights.pt; "
        "`brats-xai models` lists what is known",
        registry_path(),
    )


def resolve_models(selector: str, registry: str | Path | None = None) -> list[str]:
    """Registry ids or weights paths for `--model`: an architecture, `all`, an exact id, or a path."""
    selector = selector.strip()
    if _looks_like_path(selector):
        return [str(Path(selector).expanduser())]
    entries = load_registry(registry)
    if selector == "all":
        chosen = [default_entry(architecture, entries) for architecture in ARCHITECTURES]
        if not any(chosen):
            raise _no_weights(", ".join(ARCHITECTURES))
        return [entry.id for entry in chosen if entry is not None]
    if selector in ARCHITECTURES:
        entry = default_entry(selector, entries)
        if entry is None:
            raise _no_weights(selector)
        return [entry.id]
    if any(entry.id == selector for entry in entries):
        return [selector]
    raise InputError(
        f"unknown model {selector!r}",
        f"choose {', '.join(ARCHITECTURES)}, all, a registry id (see `brats-xai models`) or a path to a .pt file",
    )


def find_weights_file(entry: RegistryEntry) -> Path | None:
    """Where this computer holds the entry's file: beside the registry first, then in the user cache folder."""
    candidates = [entry.folder / entry.file] if entry.file else []
    candidates.append(cache_dir() / entry.file_name)
    return next((path for path in candidates if path.is_file()), None)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_get(entry: RegistryEntry) -> str:
    target = cache_dir() / entry.file_name
    if entry.url:
        return f"download {entry.url} to {target}"
    return f"copy {entry.file_name} into {entry.folder} or {target.parent} (set {CACHE_ENV} to use another folder)"


def _checked_file(entry: RegistryEntry) -> Path:
    path = find_weights_file(entry)
    if path is None:
        raise InputError(f"the weights file of model {entry.id!r} is not on this computer", _how_to_get(entry))
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise InputError(
            f"the weights file of model {entry.id!r} is damaged or a different version "
            f"(sha256 {actual[:12]}…, registry expects {entry.sha256[:12]}…)",
            "delete it, then " + _how_to_get(entry),
            path,
        )
    return path


def read_weights(path: str | Path) -> dict:
    """The weights dict of INTERFACES.md, opened with weights_only=True; InputError if it is anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError("the weights file does not exist", "check the path given to --model", path)
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged or foreign file
        first_line = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise InputError(
            f"cannot open the weights file ({first_line})",
            "give a file saved by BraTSXAI training (a dict with state_dict, architecture, width)",
            path,
        ) from None
    if not isinstance(payload, dict) or not {"state_dict", "architecture", "width"} <= payload.keys():
        raise InputError(
            "the weights file is not a BraTSXAI weights dict",
            "it must hold state_dict, architecture and width (see docs/INTERFACES.md)",
            path,
        )
    if payload["architecture"] not in ARCHITECTURES:
        raise InputError(
            f"the weights file names unknown architecture {payload['architecture']!r}",
            f"use one of {', '.join(ARCHITECTURES)}",
            path,
        )
    if payload.get("normalisation", "zscore") not in NORMALISATIONS:
        raise InputError(
            f"the weights file names unknown normalisation {payload['normalisation']!r}",
            f"use one of {', '.join(NORMALISATIONS)}",
            path,
        )
    return payload


def registry_file(selector: str, registry: str | Path | None = None) -> tuple[RegistryEntry, Path] | None:
    """The registry entry `selector` names and its file, checked against the entry's sha256 (without opening it);
    None when `selector` is a path."""
    if _looks_like_path(selector):
        return None
    entry = next((e for e in load_registry(registry) if e.id == selector), None)
    if entry is None:
        raise InputError(f"unknown model {selector!r}", "`brats-xai models` lists the registry's ids")
    return entry, _checked_file(entry)


def _check_header(entry: RegistryEntry | None, info: ModelInfo, path: Path) -> None:
    """The weights file must describe the network its registry entry says."""
    if entry is None:
        return
    if (info.architecture, info.width) != (entry.architecture, entry.width):
        raise InputError(
            f"the weights file holds a {info.architecture} of width {info.width}, "
            f"the registry says {entry.architecture} of width {entry.width}",
            "fix the registry entry",
            path,
        )
    if info.spacing != entry.spacing:
        raise InputError(f"the weights file was trained at spacing {info.spacing}, the registry says "
                         f"{entry.spacing}", "fix the registry entry", path)
    if entry.normalisation not in (None, info.normalisation):
        raise InputError(f"the weights file expects {info.normalisation} normalisation, the registry says "
                         f"{entry.normalisation}", "fix the registry entry", path)


def model_info(entry: RegistryEntry | None, path: Path, header: dict, registry: str | Path | None = None,
               training: dict | None = None, sha256: str | None = None) -> ModelInfo:
    """What the pipeline knows of a model: its registry entry (if any) and the header of its weights file
    (`ModelInfo.header()`'s fields: from the file itself, or as recorded with its OpenVINO conversion); `sha256`:
    the file's, when the caller has already hashed it."""
    patch = header.get("patch_size")
    info = ModelInfo(
        id=entry.id if entry else path.stem,
        architecture=header["architecture"],
        width=int(header["width"]),
        spacing=_spacing(header.get("spacing"), path),
        normalisation=header.get("normalisation", "zscore"),
        patch_size=tuple(int(p) for p in patch) if patch else None,
        sha256=entry.sha256 if entry else (sha256 or sha256_of(path)),
        path=path,
        training=dict(training or {}),
        rule=entry.rule if entry else LabelRule.from_dict(header.get("labels")),
        registry=(Path(registry) if registry is not None else registry_path()) if entry else None,
        quality=entry.quality if entry else {},
        explain=entry.explain if entry else {},
    )
    _check_header(entry, info, path)
    return info


def load_model(
    id_or_path: str | Path, device: str | torch.device = "cpu", registry: str | Path | None = None
) -> tuple[torch.nn.Module, ModelInfo]:
    """Build the network a registry id or weights file describes, load its weights and put it in eval mode."""
    from .models import build_model

    found = registry_file(str(id_or_path), registry)
    entry, path = found if found else (None, Path(str(id_or_path)).expanduser())
    payload = read_weights(path)
    info = model_info(entry, path, payload, registry, payload.get("training"))
    model = build_model(info.architecture, info.width)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise InputError(
            f"the weights do not fit architecture {info.architecture} (width {info.width}) "
            f"({str(error).strip().splitlines()[0][:120]})",
            "the file's architecture/width must be those it was trained with",
            path,
        ) from None
    return model.to(device).eval(), info


def save_weights(
    model: torch.nn.Module,
    path: str | Path,
    architecture: str,
    spacing: tuple[float, float, float] | None = None,
    normalisation: str = "zscore",
    patch_size: tuple[int, int, int] | None = None,
    training: dict | None = None,
) -> str:
    """Write `model` in the weights format of INTERFACES.md (atomically); return the file's sha256."""
    payload = {
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "architecture": architecture,
        "width": int(model.width),
        "spacing": list(spacing) if spacing is not None else None,
        "normalisation": normalisation,
        "patch_size": list(patch_size) if patch_size is not None else None,
        "training": training or {},
    }
    import torch

    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return sha256_of(path)
