from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from projects.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db
STRONG = "violet-harbour-17-lantern"


def create(client, team, **data) -> Invitation:
    client.force_login(team.owner)
    form = {"role": "viewer", "email": "", "days": "7", **data}
    response = client.post(reverse("invitation_list", args=[team.project.pk]), form)
    assert response.status_code == 302
    return Invitation.objects.latest("created")


def test_an_owner_creates_a_link_that_is_listed_to_copy(client, team):
    invitation = create(client, team)
    page = client.get(reverse("invitation_list", args=[team.project.pk])).content.decode()
    assert f"/invite/{invitation.token}/" in page and 'data-state="open"' in page
    assert invitation.role == Role.VIEWER and invitation.expires > timezone.now() + timedelta(days=6)


def test_only_owners_manage_invitations(client, team):
    client.force_login(team.editor)
    assert client.get(reverse("invitation_list", args=[team.project.pk])).status_code == 403
    client.force_login(team.outsider)
    assert client.get(reverse("invitation_list", args=[team.project.pk])).status_code == 404


def test_a_person_without_an_account_signs_up_through_the_link_and_joins_with_its_role(client, team):
    invitation = create(client, team, role="editor")
    client.logout()
    url = reverse("invitation_open", args=[invitation.token])
    assert "Create your account" in client.get(url).content.decode()
    response = client.post(url, {"username": "nina", "email": "", "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    nina = get_user_model().objects.get(username="nina")
    assert Membership.objects.get(project=team.project, user=nina).role == Role.EDITOR
    assert client.get(team.project.get_absolute_url()).status_code == 200  # signed in as nina
    # The link was single use.
    client.logout()
    assert client.get(url).status_code == 404


def test_a_weak_password_is_refused_by_the_validators(client, team):
    invitation = create(client, team)
    client.logout()
    url = reverse("invitation_open", args=[invitation.token])
    response = client.post(url, {"username": "nina", "password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200 and "too common" in response.content.decode()
    assert not get_user_model().objects.filter(username="nina").exists()


def test_a_signed_in_user_accepts_and_a_higher_role_is_kept(client, team):
    invitation = create(client, team, role="viewer")
    client.force_login(team.outsider)
    client.post(reverse("invitation_open", args=[invitation.token]))
    assert Membership.objects.get(project=team.project, user=team.outsider).role == Role.VIEWER
    second = create(client, team, role="viewer")
    client.force_login(team.editor)
    client.post(reverse("invitation_open", args=[second.token]))
    assert Membership.objects.get(project=team.project, user=team.editor).role == Role.EDITOR


def test_revoked_and_expired_links_do_not_admit(client, team):
    revoked = create(client, team)
    client.post(reverse("invitation_revoke", args=[team.project.pk, revoked.pk]))
    expired = create(client, team)
    Invitation.objects.filter(pk=expired.pk).update(expires=timezone.now() - timedelta(seconds=1))
    client.force_login(team.outsider)
    for invitation in (revoked, expired):
        assert client.post(reverse("invitation_open", args=[invitation.token])).status_code == 404
    assert not Membership.objects.filter(project=team.project, user=team.outsider).exists()


def test_with_an_email_backend_the_link_is_mailed(client, team, settings):
    settings.INVITATION_EMAIL = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    invitation = create(client, team, email="nina@example.com")
    (message,) = mail.outbox
    assert message.to == ["nina@example.com"] and f"/invite/{invitation.token}/" in message.body


def test_without_an_email_backend_nothing_is_mailed(client, team, settings):
    settings.INVITATION_EMAIL = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    create(client, team, email="nina@example.com")
    assert mail.outbox == []
