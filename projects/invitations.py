"""Invitations by link: an owner creates one (role, optional email, expiry); whoever opens the link signs
up, or signs in, and joins with that role. The link is shown to copy, so no mail server is needed; with
INVITATION_EMAIL on (an email backend configured), it is mailed too."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from projects.models import ROLE_RANK, Invitation, Membership, Project

logger = logging.getLogger("projects.invitations")
MAX_DAYS = 30
NOT_OPEN = "This invitation link is no longer valid (it was used, revoked or has expired)."


def invitation_create(*, project: Project, role: str, email: str, days: int, user) -> Invitation:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"An invitation lasts 1 to {MAX_DAYS} days.")
    invitation = Invitation.objects.create(
        project=project,
        role=role,
        email=email.strip(),
        token=secrets.token_urlsafe(32),
        created_by=user,
        expires=timezone.now() + timedelta(days=days),
    )
    return invitation


def invitation_send(*, invitation: Invitation, url: str) -> bool:
    """Mail the link when the studio has an email backend and the invitation an address."""
    if not (invitation.email and settings.INVITATION_EMAIL):
        return False
    subject = f"Join “{invitation.project.title}” on Scene Studio"
    body = (
        f"You are invited to join “{invitation.project.title}” as {invitation.get_role_display()}.\n\n{url}\n"
    )
    try:
        send_mail(subject, body, None, [invitation.email])
    except Exception:  # a mail server down must not lose the invitation: the link is on the page anyway
        logger.warning("Could not mail invitation %s", invitation.pk, exc_info=True)
        return False
    return True


def invitation_path(invitation: Invitation) -> str:
    return reverse("invitation_open", args=[invitation.token])


def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, accepted__isnull=True).update(revoked=timezone.now())


def open_invitation(token: str) -> Invitation | None:
    invitation = Invitation.objects.select_related("project").filter(token=token).first()
    return invitation if invitation is not None and invitation.is_open() else None


def invitation_accept(*, invitation: Invitation, user) -> Membership:
    """Use the invitation once (a conditional update: two people cannot both use one link). A member
    keeps a higher role they already have."""
    with transaction.atomic():
        now = timezone.now()
        used = Invitation.objects.filter(
            pk=invitation.pk, accepted__isnull=True, revoked__isnull=True, expires__gt=now
        ).update(accepted=now, accepted_by=user)
        if not used:
            raise ValidationError(NOT_OPEN)
        membership, created = Membership.objects.get_or_create(
            project=invitation.project, user=user, defaults={"role": invitation.role}
        )
        if not created and ROLE_RANK[invitation.role] > ROLE_RANK[membership.role]:
            membership.role = invitation.role
            membership.save(update_fields=["role"])
    return membership


def invitation_signup(*, invitation: Invitation, username: str, password: str, email: str = ""):
    """A new account from an invitation; the password has passed AUTH_PASSWORD_VALIDATORS (the form)."""
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(username=username, password=password, email=email)
            invitation_accept(invitation=invitation, user=user)
    except IntegrityError as exc:
        raise ValidationError("That username is taken.") from exc
    return user
