from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "annotate.api"
    label = "api"

    def ready(self) -> None:
        # Registers the OpenAPI extensions (authentication schemes) with drf-spectacular.
        from annotate.api import schema  # noqa: F401
