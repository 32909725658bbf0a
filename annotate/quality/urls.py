from django.urls import path

from annotate.quality import views

app_name = "quality"

urlpatterns = [
    path("", views.index, name="index"),
    path("batches/<int:batch_id>/", views.batch_dashboard, name="batch"),
    path("batches/<int:batch_id>/recompute/", views.recompute, name="recompute"),
    path("tracks/<str:track>/", views.track_dashboard, name="track"),
]
