from django.apps import AppConfig


class EndpointsConfig(AppConfig):
    name = "annotate.endpoints"
    label = "endpoints"
