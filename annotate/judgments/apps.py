from django.apps import AppConfig


class JudgmentsConfig(AppConfig):
    name = "annotate.judgments"
    label = "judgments"
