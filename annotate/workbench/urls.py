from django.urls import path

from annotate.workbench import views

app_name = "workbench"

urlpatterns = [
    path("", views.home, name="home"),
    path("safety/consent/", views.safety_consent, name="safety_consent"),
    path("b/<int:batch_id>/", views.batch_next, name="batch"),
    path("b/<int:batch_id>/guidelines/", views.guidelines, name="guidelines"),
    path("a/<int:assignment_id>/", views.assignment_page, name="assignment"),
    path("a/<int:assignment_id>/submit/", views.assignment_submit, name="submit"),
    path("a/<int:assignment_id>/skip/", views.assignment_skip, name="skip"),
    path("a/<int:assignment_id>/flag/", views.assignment_flag, name="flag"),
]
