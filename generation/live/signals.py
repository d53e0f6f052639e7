"""Access notices for live sockets: a changed or ended membership, a logout."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from generation.live.events import notify_user
from projects.models import Membership


def _notify_after_commit(user_id: int, notice: dict) -> None:
    # After the commit, so the socket's re-check reads the new state, and nothing is sent for a rollback.
    transaction.on_commit(lambda: async_to_sync(notify_user)(user_id, notice))


@receiver(post_save, sender=Membership, dispatch_uid="membership_saved_notice")
def membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    if not created:  # a new member has no socket of the project yet
        _notify_after_commit(instance.user_id, {"type": "membership.changed", "project": instance.project_id})


@receiver(post_delete, sender=Membership, dispatch_uid="membership_deleted_notice")
def membership_deleted(sender, instance: Membership, **kwargs) -> None:
    _notify_after_commit(instance.user_id, {"type": "membership.changed", "project": instance.project_id})


@receiver(user_logged_out, dispatch_uid="logged_out_notice")
def logged_out(sender, request, user, **kwargs) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and session_key:
        _notify_after_commit(user.pk, {"type": "session.ended", "session": session_key})
