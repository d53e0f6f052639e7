from __future__ import annotations

from django import forms

from generation.credentials.models import KEYED_PROVIDERS


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField()  # choices: the providers offered here (see __init__)
    # Never rendered back: a key typed once is only ever shown again by its last characters.
    secret = forms.CharField(
        label="Key", max_length=400, strip=True, widget=forms.PasswordInput(render_value=False)
    )

    def __init__(self, *args, offered: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(name, KEYED_PROVIDERS[name]) for name in offered]
