"""Project export: a streamed ZIP of the current images with their metadata (the contact sheet PNG is
projects/contact_sheet.py; it reads the same rows).

Both read the database once, up front, into a list of small dicts; image bytes are only ever read from
disk a chunk (ZIP) or one thumbnail (contact sheet) at a time while the response is being sent, so memory
stays flat however many scenes a project has.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from django.core.exceptions import SuspiciousFileOperation
from django.utils import timezone
from django.utils.text import slugify
from zipstream import ZIP_STORED, ZipStream

from generation.selectors import current_versions, project_cost, version_lineage
from projects.models import Project, Scene, SkipReason
from projects.notes import NOTE_FIELDS, NOTE_LABELS
from projects.pngmeta import is_png, png_with_text, text_chunks
from projects.wording import count_noun

SLUG_MAX = 80
FALLBACK_SLUG = "storyboard"
UNKNOWN = "unknown"
FILE_MISSING = "image file missing"

Row = dict[str, Any]


class NothingToExport(Exception):
    """The project has no scene with an image, so a ZIP would hold nothing worth downloading."""


# --- File names -----------------------------------------------------------------------------------


def title_slug(title: str, *, limit: int = SLUG_MAX) -> str:
    """A file-name-safe slug that keeps any script whole.

    django.utils.text.slugify(allow_unicode=True) drops combining marks (its regex \\w does not match
    them), which turns "গোপাল" into "গপল"; so letters, digits *and marks* are kept here and everything
    else, path separators included, becomes a single hyphen.
    """
    text = unicodedata.normalize("NFKC", title).lower()
    text = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in text)
    slug = "-".join(text.split())
    if len(slug) > limit:
        cut = limit
        # Never split a letter from its marks: back up to the start of the cluster.
        while cut > 0 and unicodedata.category(slug[cut])[0] == "M":
            cut -= 1
        slug = slug[:cut]
    return slug.strip("-") or FALLBACK_SLUG


def ascii_slug(title: str, *, limit: int = SLUG_MAX) -> str:
    """The ASCII fallback for clients that ignore filename*; Bengali titles end up as the fallback word."""
    slug = slugify(re.sub(r"[\\/]", " ", title))[:limit].strip("-_")
    return slug or FALLBACK_SLUG


def zip_filename(title: str, *, images: int, day: date, ascii_only: bool = False) -> str:
    slug = ascii_slug(title) if ascii_only else title_slug(title)
    return f"{slug}_{images}_scenes_{day.isoformat()}.zip"


def sheet_filename(title: str, *, day: date, ascii_only: bool = False) -> str:
    slug = ascii_slug(title) if ascii_only else title_slug(title)
    return f"{slug}_contact_sheet_{day.isoformat()}.png"


def content_disposition(filename: str, ascii_filename: str) -> str:
    """Both forms (RFC 6266): old clients read filename=, every current browser prefers filename*."""
    return f"attachment; filename=\"{ascii_filename}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --- Reading the project --------------------------------------------------------------------------


def scene_rows(project: Project) -> list[Row]:
    """Every scene by story position as a small dict, with its current version's metadata if it has one."""
    names: dict[int, list[str]] = {}
    links = Scene.characters.through.objects.filter(scene__project=project)
    for scene_id, name in links.order_by("character__name").values_list("scene_id", "character__name"):
        names.setdefault(scene_id, []).append(name)
    versions = current_versions(project_id=project.pk)
    lineage = version_lineage(project_id=project.pk)
    fields = ("id", "position", "title", "prompt", "status", "image", "last_error", "notes")
    return [
        {
            **scene,
            "characters": names.get(scene["id"], []),
            "version": versions.get(scene["id"]),
            "lineage": lineage.get(scene["id"], []),
        }
        for scene in project.scenes.order_by("position").values(*fields)
    ]


def image_path(name: str) -> Path | None:
    """The file behind a stored image name (as scene.image.path), or None when it is not on disk."""
    try:
        path = Path(Scene._meta.get_field("image").storage.path(name))
    except SuspiciousFileOperation:
        return None
    return path if path.is_file() else None


def last_attempt_failed(row: Row) -> bool:
    """The scene shows an image, but its last attempt failed: the image is an older one."""
    return bool(row["image"]) and row["status"] == Scene.Status.FAILED


def image_is_stale(row: Row) -> bool:
    """Scene.image_is_stale for a row: the current image was made from an earlier prompt."""
    made_from = (row["version"] or {}).get("prompt")
    return bool(row["image"]) and Scene.prompt_changed_since(made_from, row["prompt"])


def failure_text(row: Row) -> str:
    return row["last_error"].strip() or "no reason recorded"


def missing_reason(row: Row) -> str:
    if row["image"]:
        return FILE_MISSING
    if not row["prompt"].strip():
        return SkipReason.EMPTY_PROMPT.label
    return row["last_error"].strip() or "not generated yet"


# --- The ZIP --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipExport:
    stream: ZipStream
    images: int
    filename: str
    ascii_filename: str

    def __len__(self) -> int:
        return len(self.stream)


def project_zip(*, project: Project, now: datetime | None = None) -> ZipExport:
    """Queue the export lazily: files are added by path and read only while the response streams."""
    rows = scene_rows(project)
    if not any(row["image"] for row in rows):
        raise NothingToExport(f"No scene of “{project.title}” has an image yet.")
    now = now or timezone.now()
    # Stored, not deflated: PNG and JPEG are compressed already, and a stored stream has a known length.
    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    exported, missing = [], []
    for row in rows:
        if row["image"] and _add_image(stream, row):
            exported.append(row)
        else:
            missing.append(row)
    failed = [row for row in exported if last_attempt_failed(row)]
    stream.add(failed_text(project.title, missing, total=len(rows), failed=failed), "failed_scenes.txt")
    stream.add(manifest_json(project, exported, missing, now=now), "manifest.json")
    day = timezone.localdate(now)
    return ZipExport(
        stream=stream,
        images=len(exported),
        filename=zip_filename(project.title, images=len(exported), day=day),
        ascii_filename=zip_filename(project.title, images=len(exported), day=day, ascii_only=True),
    )


def _add_image(stream: ZipStream, row: Row) -> bool:
    path = image_path(row["image"])
    stem = f"scene_{row['position']:03d}"
    row["image_file"] = stem + (PurePosixPath(row["image"]).suffix.lower() or ".png")
    row["info_file"] = f"{stem}_info.txt"
    if path is None:
        return False
    try:
        # The metadata is a version's: an image no version row describes is copied as it is.
        if row["version"] is not None and is_png(path):
            chunks = text_chunks(png_metadata(row))
            size = path.stat().st_size + len(chunks)
            stream.add(png_with_text(path, chunks), row["image_file"], size=size)
        else:
            stream.add_path(str(path), row["image_file"])
    except FileNotFoundError:  # Deleted since image_path() looked.
        return False
    stream.add(info_text(row), row["info_file"])
    return True


def scene_facts(row: Row) -> dict[str, Any]:
    """The metadata of a scene's current image; None where no version row records it."""
    version = row["version"] or {}
    created = version.get("created")
    return {
        "number": row["position"],
        "title": row["title"],
        "prompt": row["prompt"],
        "prompt_sent": version.get("prompt") or None,
        "characters": row["characters"],
        "provider": version.get("provider") or None,
        "model": version.get("model") or None,
        "seed": version.get("seed"),
        "attempts": version.get("attempts"),
        "generated_at": created.isoformat() if created else None,
        "version": version.get("number"),
    }


def studio_facts(row: Row) -> dict[str, Any]:
    """What the storyboard adds to a scene's facts: its notes, the style and references of its image,
    and the lineage of its versions."""
    current = next((v for v in row.get("lineage", []) if v["number"] == scene_facts(row)["version"]), {})
    return {
        "notes": dict(row.get("notes") or {}),
        "style": current.get("style") or {},
        "negative_prompt": current.get("negative_prompt") or None,
        "reference_hashes": current.get("reference_hashes") or [],
        "candidate": current.get("candidate"),
        "versions": [
            {key: v[key] for key in ("number", "candidate", "seed", "provider", "model", "run", "created")}
            | {"prompt_sent": v["prompt"], "reference_hashes": v["reference_hashes"]}
            for v in row.get("lineage", [])
        ],
    }


def png_metadata(row: Row) -> dict[str, object]:
    facts = scene_facts(row)
    return {
        "Title": facts["title"],
        "Description": facts["prompt_sent"] or facts["prompt"],
        "scenestudio:scene": facts["number"],
        "scenestudio:prompt": facts["prompt"],
        "scenestudio:prompt_sent": facts["prompt_sent"],
        "scenestudio:seed": facts["seed"],
        "scenestudio:provider": facts["provider"],
        "scenestudio:model": facts["model"],
        "scenestudio:version": facts["version"],
    }


def _studio_lines(row: Row) -> list[str]:
    extra = studio_facts(row)
    lines = []
    style = extra["style"]
    if style.get("prefix") or style.get("suffix"):
        lines.append(f"Style: {style.get('prefix', '')} … {style.get('suffix', '')}".strip())
    if extra["negative_prompt"]:
        lines.append(f"Negative prompt: {extra['negative_prompt']}")
    if extra["reference_hashes"]:
        lines.append(f"References sent (sha256): {', '.join(extra['reference_hashes'])}")
    for name in NOTE_FIELDS:
        if extra["notes"].get(name):
            lines.append(f"{NOTE_LABELS[name]}: {extra['notes'][name]}")
    return lines


def info_text(row: Row) -> str:
    facts = scene_facts(row)

    def shown(value: Any) -> str:
        return UNKNOWN if value is None else str(value)

    lines = [
        f"Scene: {facts['number']}",
        f"Title: {facts['title'] or '(untitled)'}",
        f"Prompt: {facts['prompt'] or '(empty)'}",
    ]
    if facts["prompt_sent"] and facts["prompt_sent"] != facts["prompt"]:
        # The style, or an edit since, changed the words: say what the image was really made from.
        lines.append(f"Prompt sent: {facts['prompt_sent']}")
    lines += _studio_lines(row)
    lines += [
        f"Characters: {', '.join(facts['characters']) or 'none'}",
        f"Provider: {shown(facts['provider'])}",
        f"Model: {shown(facts['model'])}",
        f"Seed: {shown(facts['seed'])}",
        f"Attempts: {shown(facts['attempts'])}",
        f"Generated at: {shown(facts['generated_at'])}",
        f"Version: {shown(facts['version'])}",
        f"Image file: {row['image_file']}",
    ]
    return "\n".join(lines) + "\n"


def failed_text(title: str, missing: list[Row], *, total: int, failed: list[Row] = ()) -> str:
    """Scenes without an image in the export, then scenes whose image is older than a failed attempt."""
    lines: list[str] = []
    if not missing:
        every = "The one scene" if total == 1 else f"Every one of the {total} scenes"
        lines.append(f"{every} of “{title}” has an image.")
    else:
        have = "has" if len(missing) == 1 else "have"
        lines += [
            f"{len(missing)} of {count_noun(total, 'scene')} of “{title}” {have} no image in this export.",
            "",
        ]
        for row in missing:
            lines.append(f"Scene {row['position']}: {missing_reason(row)}")
            lines.append(f"  Prompt: {row['prompt'].strip() or '(empty)'}")
    if failed:
        lines += [
            "",
            f"The last attempt failed for {count_noun(len(failed), 'scene')}; "
            "the export has the older image they still show:",
        ]
        for row in failed:
            lines.append(f"Scene {row['position']}: last attempt failed: {failure_text(row)}")
            lines.append(f"  Prompt: {row['prompt'].strip() or '(empty)'}")
    return "\n".join(lines) + "\n"


def manifest_json(project: Project, exported: list[Row], missing: list[Row], *, now: datetime) -> str:
    scenes = [
        {
            **scene_facts(row),
            **studio_facts(row),
            "image_file": row["image_file"],
            "info_file": row["info_file"],
            # The image is older than the scene's last attempt, which failed (None: it did not).
            "last_attempt_failed": failure_text(row) if last_attempt_failed(row) else None,
            "prompt_changed_since_image": image_is_stale(row),
        }
        for row in exported
    ]
    gaps = [
        {"number": r["position"], "title": r["title"], "prompt": r["prompt"], "reason": missing_reason(r)}
        for r in missing
    ]
    data = {
        "project": {"id": project.pk, "title": project.title},
        "exported_at": now.isoformat(),
        "images": len(exported),
        "cost": project_cost(project_id=project.pk),
        "last_attempt_failed": [row["position"] for row in exported if last_attempt_failed(row)],
        "scenes": scenes,
        "missing": gaps,
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
