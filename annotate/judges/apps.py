from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "annotate.judges"
    label = "judges"
    verbose_name = "AI judges"
