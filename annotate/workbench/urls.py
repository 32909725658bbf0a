from django.urls import path

from annotate.workbench import live, views

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
    # Live batches (annotate/workbench/live.py)
    path("b/<int:batch_id>/live/", live.prompt_page, name="live_prompt"),
    path("b/<int:batch_id>/live/judge/", live.judge_others, name="live_judge_others"),
    path("live/<uuid:dialogue_id>/", live.dialogue_page, name="live_dialogue"),
    path("live/<uuid:dialogue_id>/status/", live.status_fragment, name="live_status"),
    path("live/<uuid:dialogue_id>/continue/", live.continue_dialogue, name="live_continue"),
    path("live/<uuid:dialogue_id>/end/", live.end_dialogue, name="live_end"),
    path("live/<uuid:dialogue_id>/retry/", live.retry_turn, name="live_retry"),
    path("live/<uuid:dialogue_id>/discard/", live.discard_turn, name="live_discard"),
]
