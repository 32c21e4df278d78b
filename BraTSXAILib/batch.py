"""Several cases in one run: a bad case is reported and the others go on; finished cases are skipped.

With one case the outputs go straight into the output folder; with several, each case gets `out/<case_id>/`.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .io import CaseSource, discover_cases, modality_of
from .pipeline import MANIFEST, LoadedModel, Progress, SegmentOptions, check_output_folder, is_finished, segment_case


@dataclass
class CaseResult:
    case_id: str
    status: str  # "done", "skipped" (finished earlier) or "failed"
    manifest: Path | None = None
    error: InputError | None = None
    unexpected: bool = False  # the failure was not the input's fault (a bug, memory): exit status 1


@dataclass
class Discovered:
    """A case found on disk, or the reason a folder that looks like a case cannot be used."""

    case_id: str
    source: CaseSource | None = None
    error: InputError | None = None


def labelled_sources(folder: Path) -> tuple[dict[str, CaseSource], dict[str, InputError]]:
    """The labelled cases of a folder of BraTS cases by id, and the case folders that cannot be used (a missing
    modality, two files of one), with why: training and evaluation report those and go on with the others."""
    sources, broken = {}, {}
    for found in find_cases([folder]):
        if found.error is not None:
            broken[found.case_id] = found.error
        elif found.source.label_path is not None:
            sources[found.case_id] = found.source
    if not sources:
        raise InputError("no labelled cases found", "each case folder needs its <id>_seg (or -seg) label file", folder)
    return sources, broken


def _has_images(folder: Path) -> bool:
    return any(child.is_file() and modality_of(child) is not None for child in folder.iterdir())


def find_cases(inputs: Sequence[str | Path]) -> list[Discovered]:
    """Cases in the inputs; a broken case folder inside a folder of cases becomes an error entry, not a stop."""
    paths = [Path(p).expanduser() for p in inputs]
    if not paths or all(p.is_file() for p in paths) or any(not p.exists() for p in paths):
        return [Discovered(source.case_id, source) for source in discover_cases(paths)]
    found: list[Discovered] = []
    for path in paths:
        if path.is_dir() and not _has_images(path):
            folders = [sub for sub in sorted(path.iterdir()) if sub.is_dir() and _has_images(sub)]
            if not folders:
                discover_cases(path)  # raises the library's "no BraTS images found" error
        else:
            folders = [path]
        for folder in folders:
            try:
                found += [Discovered(source.case_id, source) for source in discover_cases(folder)]
            except InputError as error:
                found.append(Discovered(folder.name, error=error))
    names = [case.case_id for case in found]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"several inputs hold a case named {', '.join(repeated)}",
                         "give each case once (outputs go to --out/<case id>/)")
    return found


def segment_cases(cases: Sequence[Discovered], out_dir: str | Path, models: Sequence[LoadedModel],
                  options: SegmentOptions, redo: bool = False, progress: Progress | None = None,
                  on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
    """Segment every case in turn; the results say what happened to each."""
    out_dir = Path(out_dir).expanduser()
    check_output_folder(out_dir)
    several = len(cases) > 1
    results = []
    for index, case in enumerate(cases):
        folder = out_dir / case.case_id if several else out_dir
        prefix = f"{case.case_id}: " if several else ""
        report = _case_progress(progress, index, len(cases), prefix) if progress is not None else None
        result = _one_case(case, folder, models, options, redo, report, several)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _case_progress(progress: Progress, index: int, count: int, prefix: str) -> Progress:
    def report(fraction: float, stage: str) -> None:
        progress((index + fraction) / count, prefix + stage)

    return report


def _one_case(case: Discovered, folder: Path, models: Sequence[LoadedModel], options: SegmentOptions, redo: bool,
              report: Progress | None, several: bool) -> CaseResult:
    if case.error is not None:
        if not several:
            raise case.error
        return CaseResult(case.case_id, "failed", error=case.error)
    if not redo and is_finished(folder, models, options):
        return CaseResult(case.case_id, "skipped", folder / MANIFEST)
    try:
        segment_case(case.source, folder, models, options, report)
    except InputError as error:
        if not several:
            raise
        return CaseResult(case.case_id, "failed", error=error)
    except Exception as error:  # one broken case must not stop a long batch
        if not several:
            raise
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return CaseResult(case.case_id, "failed", error=InputError(f"unexpected failure: {last}"), unexpected=True)
    return CaseResult(case.case_id, "done", folder / MANIFEST)
