"""Import a JSONL file of prompts into a batch (all or nothing), and print the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.accounts.models import User
from annotate.batches.imports import batch_import_prompts
from annotate.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Import prompts from a JSONL file ('-' reads stdin) into a batch. Every row is validated; any "
        "invalid row refuses the whole file (exit status 1) and nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("batch_id", type=int)
        parser.add_argument("file", help="Path of the JSONL file, or - for stdin.")
        parser.add_argument("--user", help="Username recorded as the items' creator.")
        parser.add_argument("--json", action="store_true", help="Print the report as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        path, batch_id = options["file"], options["batch_id"]
        try:
            if path == "-":
                report = batch_import_prompts(batch_id=batch_id, stream=sys.stdin.buffer, user=user)
            else:
                with Path(path).open("rb") as stream:
                    report = batch_import_prompts(batch_id=batch_id, stream=stream, user=user)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from None
        except DomainError as exc:
            raise CommandError(exc.message) from None

        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            self.stdout.write(report.summary())
            for error in report.errors:
                self.stdout.write(f"  line {error.line}: {error.field}: {error.message}")
        if report.refused:
            raise CommandError("Upload refused; nothing was imported.", returncode=1)
