"""Create what a scale test or benchmark needs in the database its environment names, and print it as JSON:

    python -m tests.scale.seed --projects 2 --scenes 100 [--own-keys] [--start] [--overrides '{...}']

Users, projects and scenes only; with --start it also starts a run per project, as the Generate button
does (the run's wake-up goes out on the channel layer when the transaction commits).
"""

from __future__ import annotations

import argparse
import json
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.scale.seed")
    parser.add_argument("--user", default="scaler")
    parser.add_argument("--password", default="scale-out-pw")
    parser.add_argument("--projects", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--start", nargs="*", type=int, help="start a run in these projects (ids)")
    parser.add_argument("--overrides", default="{}", help="engine settings for the runs, as JSON")
    parser.add_argument("--mode", default="sync", help="sync, or batch (a provider batch per run)")
    parser.add_argument("--own-keys", action="store_true", help="give each project its own provider key")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scenestudio.settings")
    import django

    django.setup()
    print(json.dumps(seed(args)))


def seed(args: argparse.Namespace) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from generation.credentials.services import provider_key_set
    from generation.runs import services as generation
    from projects import services
    from projects.models import Project, Scene

    users = get_user_model().objects
    user = users.filter(username=args.user).first() or users.create_user(args.user, password=args.password)
    projects = []
    for number in range(args.projects):
        project = services.project_create(title=f"Scale {number + 1}", user=user)
        Scene.objects.bulk_create(
            Scene(project=project, position=position, prompt=f"Scene {position} of project {project.pk}")
            for position in range(1, args.scenes + 1)
        )
        if args.own_keys:
            secret = f"team-{project.pk}-own-key"
            provider_key_set(project=project, provider=settings.GENERATION_PROVIDER, secret=secret, user=user)
        projects.append(project.pk)
    runs = []
    for project_id in args.start or []:
        project = Project.objects.get(pk=project_id)
        run, _ = generation.run_start(
            project=project, user=user, overrides=json.loads(args.overrides), mode=args.mode
        )
        runs.append(run.pk)
    return {"user": user.pk, "projects": projects, "runs": runs}


if __name__ == "__main__":
    main()
