from __future__ import annotations

from django.urls import path

from api import views
from api.api import api

urlpatterns = [
    path("api/", api.urls),
    path("account/tokens/", views.token_list, name="token_list"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
]
