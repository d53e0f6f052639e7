from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.template.defaultfilters import filesizeformat

from generation.selectors import offered_providers, provider_statuses
from projects.images import validate_reference_image
from projects.models import NOTE_FIELDS, NOTE_MAX_LENGTH, Character, Project, Role, Scene


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["title", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ProjectSettingsForm(forms.ModelForm):
    """The owner's settings: besides the title, which image provider and model the project's runs use."""

    provider = forms.ChoiceField(required=False)

    class Meta:
        model = Project
        fields = [
            "title",
            "description",
            "provider",
            "provider_model",
            "style_prefix",
            "style_suffix",
            "negative_prompt",
            "aspect_ratio",
            "size",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "style_prefix": forms.Textarea(attrs={"rows": 2}),
            "style_suffix": forms.Textarea(attrs={"rows": 2}),
            "negative_prompt": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"provider_model": "Model", "style_prefix": "Style before the prompt"}
        help_texts = {"provider_model": "Blank: the provider's default model"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offered = offered_providers()
        self.statuses = provider_statuses(offered, project_id=self.instance.pk)
        labels = {s.name: s.label + ("" if s.ready else " (not configured)") for s in self.statuses}
        studio = labels.get(settings.GENERATION_PROVIDER, settings.GENERATION_PROVIDER)
        default = [("", f"Studio default: {studio}")]
        self.fields["provider"].choices = default + [(name, labels[name]) for name in offered]


class SceneForm(forms.ModelForm):
    characters = forms.ModelMultipleChoiceField(
        queryset=Character.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Scene
        fields = ["title", "prompt", "characters"]
        widgets = {"prompt": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["characters"].queryset = project.characters.all()
        self.fields.update(note_fields())
        for name in NOTE_FIELDS:
            self.initial.setdefault(name, self.instance.note(name))


def note_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for name in NOTE_FIELDS:
        widget = forms.Textarea(attrs={"rows": 2}) if name == "dialogue" else forms.TextInput()
        fields[name] = forms.CharField(required=False, max_length=NOTE_MAX_LENGTH[name], widget=widget)
    return fields


class SceneNotesForm(forms.Form):
    """The storyboard notes alone, edited inline on the grid."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(note_fields())


class CharacterForm(forms.ModelForm):
    # A FileField, not ImageField, so every bad upload gets our one set of messages.
    reference = forms.FileField(required=False, validators=[validate_reference_image])

    class Meta:
        model = Character
        fields = ["name", "aliases", "description", "reference"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}), "aliases": forms.TextInput()}

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Character.objects.filter(project=self.project, name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("This project already has a character with that name.")
        return name


class ExtraReferenceForm(forms.Form):
    image = forms.FileField(validators=[validate_reference_image], label="Another reference view")
    label = forms.CharField(max_length=40, required=False, help_text="e.g. profile, full body")


class StudioZipImportForm(forms.Form):
    file = forms.FileField(label="Scene Studio ZIP", help_text="A ZIP made by “Download ZIP”")
    mode = forms.ChoiceField(
        choices=[("append", "Add after the existing scenes"), ("replace", "Replace all scenes")],
        initial="append",
        widget=forms.RadioSelect,
        label="Existing scenes",
    )


class StoryImportForm(forms.Form):
    FORMATS = [
        ("auto", "Detect automatically"),
        ("text", "Plain text, one scene per paragraph"),
        ("numbered", "Numbered lines or 'Scene N:' headings"),
        ("csv", "CSV with a prompt column"),
        ("json", "JSON list"),
    ]
    MODES = [("append", "Add after the existing scenes"), ("replace", "Replace all scenes")]

    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12}), label="Paste the story")
    file = forms.FileField(required=False, label="…or upload a file")
    fmt = forms.ChoiceField(choices=FORMATS, initial="auto", label="Format")
    mode = forms.ChoiceField(
        choices=MODES, initial="append", widget=forms.RadioSelect, label="Existing scenes"
    )

    @staticmethod
    def too_large() -> str:
        return f"The story is too large: at most {filesizeformat(settings.STORY_MAX_BYTES)}."

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if upload:
            if upload.size > settings.STORY_MAX_BYTES:
                raise forms.ValidationError(self.too_large())
            try:
                data["text"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
            data["filename"] = upload.name
        else:
            data["filename"] = ""
            # Pasted text has the same limit as a file: 10 MB pasted made 2,000 scenes of 5,000 characters.
            if len((data.get("text") or "").encode("utf-8", "surrogatepass")) > settings.STORY_MAX_BYTES:
                raise forms.ValidationError(self.too_large())
        if not (data.get("text") or "").strip():
            raise forms.ValidationError("Paste a story or choose a file.")
        return data


class InvitationForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    email = forms.EmailField(required=False, help_text="Optional: the link is mailed there if the studio can")
    days = forms.IntegerField(min_value=1, max_value=30, initial=7, label="Valid for (days)")


class InvitationSignupForm(UserCreationForm):
    """A new account: Django's form, so the password goes through AUTH_PASSWORD_VALIDATORS."""

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.EDITOR)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
