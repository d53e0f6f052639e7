"""Story import time: a story of the 2 MB maximum (1,000 scenes, the per-project cap) that names 200 new
characters, 40 per scene, imported into a project that already has 50 characters with aliases.

Run standalone from the repository root: `python -m bench.import_story`; writes var/bench/import.json.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from bench import setup_django, write_json

SCENES = 1000
NEW_CHARACTERS = 200
NAMES_PER_SCENE = 40
EXISTING_CHARACTERS = 50
STORY_BYTES = 2 * 1024 * 1024


def make_story(rng: random.Random) -> str:
    names = [f"Person{index} Surname{index}" for index in range(NEW_CHARACTERS)]
    items = []
    for index in range(SCENES):
        cast = rng.sample(names, NAMES_PER_SCENE)
        words = " ".join(
            rng.choice([*cast[:5], "walks", "the", "market", "Hero7", "and"]) for _ in range(180)
        )
        items.append({"title": f"Scene {index}", "prompt": words, "characters": cast})
    text = json.dumps(items)
    while len(text.encode()) > STORY_BYTES:  # trim prompts until the story fits the upload limit
        for item in items:
            item["prompt"] = item["prompt"][: int(len(item["prompt"]) * 0.95)]
        text = json.dumps(items)
    return text


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp))
        from django.contrib.auth import get_user_model

        from projects import services

        user = get_user_model().objects.create_user("bench", password="x")
        project = services.project_create(title="Import", user=user)
        for index in range(EXISTING_CHARACTERS):
            services.character_save(project=project, name=f"Hero{index}", aliases=f"H{index}, the {index}th")
        text = make_story(random.Random(7))
        started = time.perf_counter()
        scenes = services.story_import(project=project, text=text)
        seconds = time.perf_counter() - started
        links = sum(scene.characters.count() for scene in project.scenes.all())
    result = {
        "story_bytes": len(text.encode()),
        "scenes": len(scenes),
        "characters": EXISTING_CHARACTERS + NEW_CHARACTERS,
        "links": links,
        "seconds": round(seconds, 2),
    }
    print(json.dumps(result))
    write_json("import", result)


if __name__ == "__main__":
    main()
