from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "annotate.workbench"
    label = "workbench"
