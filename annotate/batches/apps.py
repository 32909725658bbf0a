from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "annotate.batches"
    label = "batches"
