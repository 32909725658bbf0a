from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "annotate.api"
    label = "api"
