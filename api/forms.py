from __future__ import annotations

from django import forms

from projects.models import Project


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “nightly import script”")
    read_only = forms.BooleanField(required=False, help_text="Reads only: no edits, no runs")
    projects = forms.ModelMultipleChoiceField(
        queryset=Project.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every project you belong to, now and later",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["projects"].queryset = Project.objects.filter(memberships__user=user).order_by("title")
