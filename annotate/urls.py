from django.contrib import admin
from django.urls import include, path

from annotate.core import health

admin.site.site_header = "Preference annotation · admin"
admin.site.site_title = "Preference annotation"
admin.site.index_title = "Batches, endpoints and people"

handler500 = "annotate.core.unavailable.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("annotate.accounts.urls")),
    path("api/", include("annotate.api.urls")),
    path("quality/", include("annotate.quality.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("annotate.workbench.urls")),
]
