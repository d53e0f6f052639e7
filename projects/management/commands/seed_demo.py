"""Idempotent demo data for `make run`: a demo login and a 20-scene folk tale with three characters."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from projects import services
from projects.models import Membership, Project, Role

DEMO_USER, DEMO_PASSWORD = "demo", "storyboard-demo"
TEAMMATE, TEAMMATE_PASSWORD = "teammate", "storyboard-team"
TITLE = "Gopal Bhar and the Royal Barber"

CHARACTERS = [
    ("Gopal Bhar", "Gopal", "A round-faced, witty court jester in a white dhoti and a shawl, sly smile"),
    (
        "Raja Krishnachandra",
        "the Raja, Raja",
        "A stately Bengal king with a jewelled turban and a curled moustache",
    ),
    ("Napit", "the barber", "A thin, nervous royal barber with a leather razor pouch and a tilted cap"),
]

SCENES = [
    "Sunrise over Krishnanagar: the palace towers above a busy riverside market",
    "Raja Krishnachandra holds court on his throne, courtiers bowing on both sides",
    "Gopal Bhar strolls into the court, grinning, shawl over one shoulder",
    "The Raja complains that his beard itches and nobody can shave him without nicks",
    "Napit the barber trembles before the throne, razor pouch clutched to his chest",
    "Gopal whispers a wager to the Raja behind his hand",
    "",
    "The barber sharpens his razor on a leather strop by lamplight",
    "Gopal Bhar paints a fake crown of soap on the sleeping Raja's head",
    "Courtiers gasp behind the pillars as the Raja wakes, soap foam everywhere",
    "The Raja laughs so hard his turban slips; Gopal bows deeply",
    "Napit faints into a basket of marigolds",
    "Gopal fans the barber awake with a palm leaf while the court watches",
    "",
    "The Raja announces a contest: whoever makes him laugh tomorrow wins a gold coin",
    "Night market: Gopal Bhar buys a goat, a drum and a bag of puffed rice",
    "The barber and Gopal rehearse a ridiculous dance in a moonlit courtyard",
    "Morning court: the goat eats the Raja's decree while the drum booms",
    "Raja Krishnachandra, tears of laughter, hands Gopal the gold coin",
    "Gopal gives the coin to Napit; the two walk home along the river at sunset",
]


class Command(BaseCommand):
    help = "Create the demo login and demo project (idempotent). Refuses to run with DEBUG off."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo is for development only and never runs with DEBUG off.")
        with transaction.atomic():
            demo = self._user(DEMO_USER, DEMO_PASSWORD, staff=True)
            teammate = self._user(TEAMMATE, TEAMMATE_PASSWORD, staff=False)
            project = Project.objects.filter(title=TITLE, memberships__user=demo).first()
            if project is None:
                project = self._project(demo)
            Membership.objects.get_or_create(project=project, user=teammate, defaults={"role": Role.EDITOR})
        self.stdout.write(
            f"Demo ready: log in as {DEMO_USER} / {DEMO_PASSWORD} (or {TEAMMATE} / {TEAMMATE_PASSWORD})"
        )

    def _user(self, username: str, password: str, *, staff: bool):
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = staff
            user.save()
        return user

    def _project(self, owner) -> Project:
        project = services.project_create(
            title=TITLE,
            description="A Bengali folk tale in 20 panels, for trying the studio out.",
            user=owner,
        )
        for name, aliases, description in CHARACTERS:
            services.character_save(project=project, name=name, aliases=aliases, description=description)
        for prompt in SCENES:
            # Two prompts are deliberately empty so the batch engine's skip rule shows in the demo.
            services.scene_create(project=project, prompt=prompt)
        return project
