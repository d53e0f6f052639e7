"""The project style: what every scene request of a project's runs carries besides the scene's prompt.

The prefix and suffix may use placeholders for the scene's own fields; scene notes reach the provider
only through them. A prefix or suffix that places `{prompt}` itself replaces the default layout
("prefix, prompt, suffix").
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError

PLACEHOLDERS = ("prompt", "shot", "camera", "characters")
# Sizes the studio offers for each aspect ratio; providers round to what they support.
ASPECT_SIZES = {
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "1:1": "1024x1024",
    "16:9": "1792x1024",
    "9:16": "1024x1792",
}
DEFAULT_ASPECT = "3:2"


def placeholders_in(template: str) -> list[str]:
    """The placeholder names a template uses; ValidationError for a malformed one or an unknown name."""
    allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError(
            f"The style has an unmatched brace: write {{{{ or }}}} for a brace, or use {allowed}."
        ) from exc
    names = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            raise ValidationError(f"Unknown placeholder {shown}: the style may use {allowed}.")
        names.append(name)
    return names


def validate_style_template(value: str) -> None:
    placeholders_in(value)


@dataclass(frozen=True)
class Style:
    prefix: str = ""
    suffix: str = ""
    negative_prompt: str = ""
    aspect_ratio: str = ""
    size: str = ""

    @classmethod
    def of(cls, project) -> Style:
        return cls(
            prefix=project.style_prefix.strip(),
            suffix=project.style_suffix.strip(),
            negative_prompt=project.negative_prompt.strip(),
            aspect_ratio=project.aspect_ratio,
            size=project.size,
        )

    def is_empty(self) -> bool:
        return not any(asdict(self).values())

    def as_dict(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value}

    def dimensions(self) -> tuple[str, str]:
        """(aspect ratio, size) for requests: the size follows the aspect ratio unless set."""
        aspect = self.aspect_ratio or DEFAULT_ASPECT
        return aspect, self.size or ASPECT_SIZES.get(aspect, ASPECT_SIZES[DEFAULT_ASPECT])

    def compose(self, *, prompt: str, shot: str = "", camera: str = "", characters: str = "") -> str:
        """The prompt sent for a scene: the style around the scene's prompt, placeholders filled."""
        values = {"prompt": prompt.strip(), "shot": shot.strip(), "camera": camera.strip()}
        values["characters"] = characters.strip()
        if not (self.prefix or self.suffix):
            return values["prompt"]
        places_prompt = "prompt" in placeholders_in(self.prefix) + placeholders_in(self.suffix)
        parts = [self.prefix, "" if places_prompt else "{prompt}", self.suffix]
        # A placeholder left empty (no shot given) leaves no run of blanks behind.
        sent = " ".join(part for part in parts if part).format(**values)
        return re.sub(r"[ \t]{2,}", " ", sent).strip()

    def compose_for(self, scene, characters: list) -> str:
        names = ", ".join(character.name for character in characters)
        return self.compose(prompt=scene.prompt, shot=scene.shot, camera=scene.camera, characters=names)
