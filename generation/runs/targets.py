"""What a run generates: scenes, or character reference portraits. Everything that differs between the two
kinds lives here, so the recorder and the execution never ask which kind they run.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, QuerySet
from django.urls import reverse
from django.utils import timezone

from generation.engine.jobs import Job
from generation.models import BatchRun, GenerationAttempt, SceneVersion
from generation.providers.base import ImageRequest, ImageResult, Provider
from generation.runs.references import ReferenceReader, ReferenceUnreadable
from generation.runs.selectors import project_totals, scenes_claimed
from generation.runs.services import scenes_claim
from generation.runs.versions import scene_version_add, scenes_lock_for_versions
from projects.images import detect_image_format
from projects.models import Character, Scene, SkipReason, private_image_path
from projects.style import Style
from webhooks.services import webhook_run_event

PORTRAIT_PROMPT = (
    "Character reference portrait of {name}. {description} Full face and figure, plain light background, "
    "storyboard character sheet."
)


@dataclass
class Plan:
    """A run's work as it starts: the jobs to send, the items skipped and why, how to name every item, and
    how many this run had already generated before a takeover."""

    jobs: list[Job] = field(default_factory=list)
    skips: list[tuple[int, SkipReason]] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    done: int = 0
    # Items that cannot be sent (a reference image that cannot be read), with the reason: failed at once.
    blocked: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Success:
    """A received image, stored under `image`, to record for `job`."""

    job: Job
    image: str
    result: ImageResult
    attempts: int
    attempt_id: int | None


class Target:
    """One kind of run item. `noun` prefixes the events ("scene.started")."""

    noun: ClassVar[str]
    url_name: ClassVar[str]
    folder: ClassVar[str]  # where the project's images of this kind are stored

    def __init__(self, run: BatchRun) -> None:
        self.run = run
        self.group: Any = None  # what begin_group prepared, while a group of item writes is written

    def event(self, name: str) -> str:
        return f"{self.noun}.{name}"

    def attempt_fields(self, key: int) -> dict[str, int]:
        return {f"{self.noun}_id": key}

    def attempt_record(self, key: Hashable) -> dict[str, Any]:
        """What the attempt row records about the request sent for `key` (the prompt as sent...)."""
        return {}

    def count(self, keys: set[Hashable]) -> int:
        """How many items these job keys stand for."""
        return len(keys)

    def image_url(self, key: int, version: int) -> str:
        return reverse(self.url_name, args=[self.run.project_id, key]) + f"?thumb=1&v={version}"

    def image_name(self, key: Hashable, result: ImageResult) -> str:
        return self._path(f"{key}{content_suffix(result)}")

    def _path(self, filename: str) -> str:
        return private_image_path(self.folder, self.run.project_id, filename)

    def plan(self, provider: Provider) -> Plan:
        raise NotImplementedError

    def gone(self, key: int) -> bool:
        """Inside a transaction: whether the item was deleted meanwhile; if not, its row stays locked so
        it cannot vanish before this write commits."""
        return False

    def totals(self) -> dict[str, int] | None:
        """The project's totals a summary mentions; None where the project's scenes are not the subject."""
        return None

    def removed(self, keys: set[int]) -> set[int]:
        """The run's items deleted while it ran: whatever the engine did with them, nothing is left."""
        return set()

    def last_failed_attempts(self, items: set[int]) -> dict[int, int]:
        """Each item's newest failed attempt (in any run): the one its next attempt retries."""
        column = f"{self.noun}_id"
        failed = GenerationAttempt.objects.filter(
            status=GenerationAttempt.Status.FAILED, **{f"{column}__in": items}
        )
        # Oldest first, so each item keeps its newest.
        return dict(failed.order_by("started", "pk").values_list(column, "pk"))

    def mark_started(self, key: int, *, fence: Exists | None) -> bool:
        """The item's first request is about to go; False when the fence no longer holds."""
        return True

    def begin_group(self, *, started: set[int], succeeded: set[int]) -> None:
        """A group of item writes begins, in a transaction holding the run: do for all of `started`
        (items whose first request goes) and `succeeded` (items whose image came) at once what each
        of their writes would do alone. No other write of the group touches these items."""

    def end_group(self) -> None:
        """Before the group commits: write what its writes left to be written together."""

    def record_success(self, success: Success) -> bool:
        """Inside the fenced transaction: point the item at its new image; False when the item is gone
        (which this finds out as gone() would, locking its row)."""
        raise NotImplementedError

    def record_failure(self, key: int, reason: str) -> None:
        """Inside the fenced transaction: the item will not be generated by this run."""

    def claims(self, key: int) -> bool:
        """Whether this run still holds the item (its outcome is not recorded yet)."""
        return False


class Candidate(NamedTuple):
    """The job key of one of several variations asked for a scene (a run with candidates > 1)."""

    scene_id: int
    index: int  # 1..run.candidates


def item_of(key: Hashable) -> int:
    """The scene or character a job key stands for."""
    return key.scene_id if isinstance(key, Candidate) else key  # type: ignore[return-value]


def content_suffix(result: ImageResult) -> str:
    """The suffix of the format of the image's bytes, never of the provider's label: as read when the
    answer was checked (generation.checked), else read here."""
    return result.content_suffix or detect_image_format(result.image).suffix


class SceneTarget(Target):
    noun = "scene"
    url_name = "scene_image"
    folder = "scenes"

    def __init__(self, run: BatchRun) -> None:
        super().__init__(run)
        self.style = Style.of(run.project)
        self.requests: dict[Hashable, RequestRecord] = {}
        # Candidates of each scene this run still waits for: the last one to end releases the scene.
        self.waiting: dict[int, set[Hashable]] = {}

    def image_name(self, key: Hashable, result: ImageResult) -> str:
        name = f"{key.scene_id}-{key.index}" if isinstance(key, Candidate) else str(key)
        return self._path(f"{name}{content_suffix(result)}")

    def image_url(self, key: Hashable, version: int) -> str:
        return super().image_url(item_of(key), version)

    def attempt_fields(self, key: Hashable) -> dict[str, int]:
        return super().attempt_fields(item_of(key))

    def attempt_record(self, key: Hashable) -> dict[str, Any]:
        record = self.requests.get(key)
        if record is None:
            return super().attempt_record(key)
        return {
            "prompt": record.prompt,
            "negative_prompt": record.negative_prompt,
            "reference_hashes": record.reference_hashes,
        }

    def count(self, keys: set[Hashable]) -> int:
        return len({item_of(key) for key in keys})

    def plan(self, provider: Provider) -> Plan:
        run = self.run
        scenes = list(run.scenes.order_by("position").select_related("seed_lock"))
        # Scenes this run generated before it was taken over: done, neither skipped nor generated again.
        done = set(SceneVersion.objects.filter(attempt__run=run).values_list("scene_id", flat=True))
        plan = Plan(done=sum(1 for scene in scenes if scene.pk in done))
        wanted: list[Scene] = []
        for scene in scenes:
            plan.labels[scene.pk] = f"Scene {scene.position}"
            plan.positions[scene.pk] = scene.position
            if scene.pk in done:
                continue
            reason = scene.skip_code(regenerate=run.regenerate)
            (plan.skips.append((scene.pk, reason)) if reason else wanted.append(scene))
        empty = [pk for pk, reason in plan.skips if reason == SkipReason.EMPTY_PROMPT]
        Scene.objects.filter(pk__in=empty).mark_skipped()
        scenes_claim(run=run, scene_ids=[s.pk for s in wanted])
        claimed = scenes_claimed(run=run, scene_ids=[s.pk for s in wanted])
        plan.skips += [(s.pk, SkipReason.BUSY) for s in wanted if s.pk not in claimed]
        reader = ReferenceReader(Path(settings.MEDIA_ROOT))
        casts = run.scenes.casts() if claimed else {}
        for scene in (s for s in wanted if s.pk in claimed):
            try:
                plan.jobs += self._jobs(scene, casts.get(scene.pk, []), reader, provider)
            except ReferenceUnreadable as exc:
                # Fail closed: a request without the character's face would draw a stranger.
                plan.blocked.append((scene.pk, f"Not generated: {exc}"))
        return plan

    def _jobs(
        self, scene: Scene, characters: list[Character], reader: ReferenceReader, provider: Provider
    ) -> list[Job]:
        capabilities = provider.capabilities
        references = reader.for_scene(characters, capabilities.max_references)
        aspect, size = self.style.dimensions()
        negative = self.style.negative_prompt if capabilities.negative_prompt else ""
        label = f"Scene {scene.position}"
        request = ImageRequest(
            prompt=self.style.compose_for(scene, characters),
            references=tuple(references.sent),
            model=self.run.model,
            label=label,
            aspect_ratio=aspect,
            size=size,
            negative_prompt=negative,
        )
        count = max(1, self.run.candidates)
        keys: list[Hashable] = (
            [scene.pk] if count == 1 else [Candidate(scene.pk, i) for i in range(1, count + 1)]
        )
        self.waiting[scene.pk] = set(keys)
        record = RequestRecord(scene.prompt.strip(), request.prompt, negative, references.hashes, self.style)
        jobs = []
        for index, key in enumerate(keys):
            self.requests[key] = record
            seed = self._seed(scene, capabilities.seed, index)
            jobs.append(Job(key=key, request=dataclasses.replace(request, seed=seed), label=label))
        return jobs

    @staticmethod
    def _seed(scene: Scene, honoured: bool, index: int) -> int:
        if scene.locked_seed is not None and honoured:
            return scene.locked_seed + index  # variations of a locked scene stay near its composition
        return random.randrange(2**31)

    def gone(self, key: Hashable) -> bool:
        # A delete or a replace-import during the run.
        return not Scene.objects.select_for_update().filter(pk=item_of(key)).exists()

    def totals(self) -> dict[str, int] | None:
        # Only a run that follows earlier ones resumes the project's work; a first run keeps its shapes.
        earlier = BatchRun.objects.filter(
            project_id=self.run.project_id, kind=self.run.kind, created__lt=self.run.created
        )
        return project_totals(project_id=self.run.project_id) if earlier.exists() else None

    def removed(self, keys: set[Hashable]) -> set[Hashable]:
        present = set(Scene.objects.filter(pk__in={item_of(k) for k in keys}).values_list("pk", flat=True))
        return {key for key in keys if item_of(key) not in present}

    def mark_started(self, key: Hashable, *, fence: Exists | None) -> bool:
        if self.group is not None and item_of(key) in self.group.started:
            return item_of(key) in self.group.marked
        # Fenced: a scene the new owner may have generated since must not look "generating" again.
        return bool(Scene.objects.filter(pk=item_of(key)).mark_generating(fence=fence))

    def begin_group(self, *, started: set[int], succeeded: set[int]) -> None:
        group = _SceneGroup(started=started, locked=scenes_lock_for_versions(succeeded) if succeeded else {})
        if started:
            scenes = Scene.objects.filter(pk__in=started)
            # Only a scene deleted meanwhile is not marked: then (rarely) one more query says which.
            marked = scenes.mark_generating()
            group.marked = started if marked == len(started) else set(scenes.values_list("pk", flat=True))
        self.group = group

    def end_group(self) -> None:
        if self.group is None:
            return
        if self.group.versions:
            SceneVersion.objects.bulk_create(self.group.versions)
        for release, images in self.group.ready.items():
            if images:
                self._ready(images, release=release)

    def _last(self, key: Hashable) -> bool:
        """This job ended; whether it was the scene's last one in this run (which lets the scene go)."""
        waiting = self.waiting.get(item_of(key), set())
        waiting.discard(key)
        return not waiting

    def record_success(self, success: Success) -> bool:
        job, result = success.job, success.result
        record = self.requests.get(job.key)
        version = scene_version_add(
            scene_id=item_of(job.key),
            image=success.image,
            attempt_id=success.attempt_id,
            provider=self.run.provider,
            model=result.model or self.run.model,
            seed=result.seed if result.seed is not None else job.request.seed,
            prompt=job.request.prompt,
            attempts=success.attempts,
            scene_prompt=record.scene_prompt if record else "",
            style=record.style.as_dict() if record else {},
            negative_prompt=job.request.negative_prompt,
            reference_hashes=record.reference_hashes if record else [],
            candidate=job.key.index if isinstance(job.key, Candidate) else 1,
            **self._group_versions(item_of(job.key)),
        )
        if version is None:  # deleted, or replaced by an import, during the run
            return False
        scene_id, release = item_of(job.key), self._last(job.key)
        if self.group is not None and scene_id in self.group.locked:
            self.group.ready[release][scene_id] = success.image  # shown with the group's others
        else:
            self._ready({scene_id: success.image}, release=release)
        return True

    def _ready(self, images: dict[int, str], *, release: bool) -> None:
        Scene.objects.mark_ready_each(images, release=release)
        # After the scenes show their images: the event carries each scene's status.
        for scene_id in images:
            webhook_run_event(run=self.run, event="scene.ready", scene_id=scene_id)

    def _group_versions(self, scene_id: int) -> dict[str, Any]:
        """In a group, a scene it locked already is not locked again, and its version is inserted with
        the group's others."""
        if self.group is None or scene_id not in self.group.locked:
            return {}
        return {"locked": self.group.locked, "pending": self.group.versions}

    def record_failure(self, key: Hashable, reason: str) -> None:
        scene_id = item_of(key)
        last = self._last(key)
        if isinstance(key, Candidate):
            scene = Scene.objects.filter(pk=scene_id).first()
            got_one = SceneVersion.objects.filter(scene_id=scene_id, attempt__run=self.run).exists()
            if scene is not None and got_one:
                # Another variation arrived: the scene shows it; one failed candidate does not fail it.
                Scene.objects.filter(pk=scene_id).mark_ready(image=scene.image.name, release=last)
                return
            if not last:
                return  # the scene's fate waits for its other candidates
        Scene.objects.filter(pk=scene_id).mark_failed(reason=reason)
        webhook_run_event(run=self.run, event="scene.failed", scene_id=scene_id)

    def claims(self, key: Hashable) -> bool:
        return Scene.objects.filter(pk=item_of(key), claimed_by=self.run.pk).exists()


@dataclass
class _SceneGroup:
    """What SceneTarget.begin_group did for a group: the scenes it marked generating (of those whose
    first request goes), the scenes it locked for their new version; and what end_group writes: the
    versions to insert and the images the locked scenes show, by whether they let go of the run."""

    started: set[int]
    locked: dict[int, Scene]
    marked: set[int] = field(default_factory=set)
    versions: list[SceneVersion] = field(default_factory=list)
    ready: dict[bool, dict[int, str]] = field(default_factory=lambda: {True: {}, False: {}})


@dataclass(frozen=True)
class RequestRecord:
    """What a scene's request was made of, kept for its attempts and versions."""

    scene_prompt: str
    prompt: str
    negative_prompt: str
    reference_hashes: list[str]
    style: Style


class CharacterTarget(Target):
    noun = "character"
    url_name = "character_reference"
    folder = "characters"

    def attempt_record(self, key: Hashable) -> dict[str, Any]:
        return {"prompt": self.prompts[key]} if key in getattr(self, "prompts", {}) else {}

    def plan(self, provider: Provider) -> Plan:
        plan = Plan()
        self.prompts: dict[Hashable, str] = {}
        for character in self.run.characters.order_by("name"):
            plan.labels[character.pk] = character.name
            prompt = PORTRAIT_PROMPT.format(name=character.name, description=character.description or "")
            self.prompts[character.pk] = prompt
            request = ImageRequest(
                prompt=prompt,
                seed=random.randrange(2**31),
                model=self.run.model,
                label=character.name,
                aspect_ratio="1:1",
                size="1024x1024",
            )
            plan.jobs.append(Job(key=character.pk, request=request, label=character.name))
        return plan

    def record_success(self, success: Success) -> bool:
        characters: QuerySet[Character] = Character.objects.filter(pk=success.job.key)
        old = characters.values_list("reference", flat=True).first()
        characters.update(reference=success.image, updated=timezone.now())
        if old:
            transaction.on_commit(lambda: default_storage.delete(old))
        return True


TARGETS: dict[str, type[Target]] = {
    BatchRun.Kind.SCENES: SceneTarget,
    BatchRun.Kind.CHARACTERS: CharacterTarget,
}


def target_for(run: BatchRun) -> Target:
    return TARGETS[run.kind](run)


def item_payload(plan: Plan, key: Hashable) -> dict[str, Any]:
    item = item_of(key)
    payload = {"id": item, "position": plan.positions.get(item), "label": plan.labels.get(item, str(item))}
    if isinstance(key, Candidate):
        payload["candidate"] = key.index
    return payload
