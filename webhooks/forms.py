from __future__ import annotations

from django import forms

from webhooks.models import EVENTS
from webhooks.urlcheck import webhook_url_check


class EndpointForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", validators=[webhook_url_check], assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in EVENTS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event",
    )
