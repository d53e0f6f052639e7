"""The admin for projects, scenes and characters.

Staff who are not superusers act here as in the pages: only on projects they belong to and only as their
role allows (viewers read, editors change scenes and characters, owners change the project and its
members). Model permissions alone are not enough: a grant of "change scene" must not open other projects.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html

from projects.access import admin_allows, admin_projects
from projects.models import Character, Membership, Project, Role, Scene


class MemberScopedAdmin(admin.ModelAdmin):
    """Lists and pages hold only the user's projects; changes need `change_role` in the object's project."""

    project_path = "project"  # from the model to its project, for the lookup that scopes every list
    change_role = Role.EDITOR

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.project_path}__in": admin_projects(user=request.user)})

    def project_id_of(self, obj) -> int:
        return obj.project_id

    def allows(self, request, obj, needs: str) -> bool:
        return admin_allows(user=request.user, project_id=self.project_id_of(obj), needs=needs)

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or self.allows(request, obj, self.change_role))

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or self.allows(request, obj, self.change_role))


class InProjectAdmin(MemberScopedAdmin):
    """Scenes and characters: created in a project the user edits, and never moved to another one."""

    def has_add_permission(self, request) -> bool:
        allowed = super().has_add_permission(request)
        return allowed and admin_projects(user=request.user, needs=self.change_role).exists()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        project = form.base_fields.get("project")
        if project is not None:
            # A limited queryset is also the server-side check: a posted id outside it is not a valid choice.
            project.queryset = admin_projects(user=request.user, needs=self.change_role)
            if obj is not None:
                # Disabled, not read-only, so the form still validates the (project, ...) unique constraints.
                project.queryset = Project.objects.filter(pk=obj.project_id)
                project.disabled = True
        return form

    def save_model(self, request, obj, form, change) -> None:
        # The form already refused other projects; this holds even if a form is ever built without it.
        if not self.allows(request, obj, self.change_role):
            raise PermissionDenied("Your role in this project cannot do this.")
        super().save_model(request, obj, form, change)


class ReadOnlyInline(admin.TabularInline):
    """A record shown beside its parent: never added, changed or deleted from the admin."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class MembershipFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = [f.cleaned_data for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        # As on the members page: nobody could manage a project left without an owner.
        if self.instance.pk and not any(data.get("role") == Role.OWNER for data in kept):
            raise ValidationError("A project needs at least one owner.")


class MembershipInline(admin.TabularInline):
    """Only owners (and superusers) change who is in a project; the users offered are members of the
    user's own projects, not every account."""

    model = Membership
    formset = MembershipFormSet
    extra = 1

    def get_autocomplete_fields(self, request):
        # The autocomplete searches every user; others pick from the members of their own projects.
        return ["user"] if request.user.is_superuser else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            projects = admin_projects(user=request.user, needs=Role.VIEWER)
            members = get_user_model().objects.filter(memberships__project__in=projects).distinct()
            kwargs["queryset"] = members.order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _owner(self, request, project) -> bool:
        return project is None or admin_allows(user=request.user, project_id=project.pk, needs=Role.OWNER)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and self._owner(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._owner(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._owner(request, obj)


@admin.register(Project)
class ProjectAdmin(MemberScopedAdmin):
    project_path = "pk"
    change_role = Role.OWNER
    list_display = ["title", "created_by", "provider", "created", "updated"]
    search_fields = ["title", "description"]
    inlines = [MembershipInline]

    def project_id_of(self, obj) -> int:
        return obj.pk

    def has_add_permission(self, request) -> bool:
        # Others create projects on the studio's page, which makes them its owner.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else [*fields, "created_by"]


class SceneAdminForm(forms.ModelForm):
    class Meta:
        model = Scene
        fields = "__all__"  # noqa: DJ007  (the admin's own fieldsets decide what shows)

    def clean(self):
        cleaned = super().clean()
        project = cleaned.get("project") or getattr(self.instance, "project", None)
        strays = [
            c.name for c in cleaned.get("characters") or [] if project is None or c.project_id != project.pk
        ]
        if strays:
            raise ValidationError(f"Not characters of this scene's project: {', '.join(strays)}.")
        return cleaned


@admin.register(Scene)
class SceneAdmin(InProjectAdmin):
    form = SceneAdminForm
    list_display = ["__str__", "project", "status", "excerpt", "updated"]
    list_filter = ["status", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["prompt", "title"]
    list_select_related = ["project"]
    filter_horizontal = ["characters"]
    readonly_fields = ["created", "updated"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        characters, project = form.base_fields.get("characters"), form.base_fields.get("project")
        if characters is not None and project is not None:
            in_reach = Character.objects.filter(project__in=project.queryset)
            characters.queryset = in_reach.order_by("project", "name")
        return form


@admin.register(Character)
class CharacterAdmin(InProjectAdmin):
    list_display = ["name", "project", "reference_preview", "updated"]
    list_filter = [("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "aliases"]
    readonly_fields = ["reference_preview", "created", "updated"]

    @admin.display(description="Reference")
    def reference_preview(self, character: Character) -> str:
        if not character.reference or character.pk is None:  # None: an add form shown again with errors
            return "—"
        url = reverse("character_reference", args=[character.project_id, character.pk])
        # A height attribute, not a style one: the site's CSP allows no inline style.
        return format_html('<img src="{}?thumb=1" alt="" height="64">', url)
