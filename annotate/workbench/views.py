"""The annotator's pages. Thin: parse, call one service, render.

Submits come from our script as fetch requests (header X-Requested-With: fetch) and get the next item's
HTML back to swap in, or the same item re-rendered with its errors; a plain form POST (no script) gets
the usual redirect or re-rendered page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.accounts.selectors import safety_consent_pending, user_can_annotate_track
from annotate.accounts.services import qualification_record_consent
from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment, AssignmentFlag, AssignmentStatus
from annotate.batches.models import Batch, ItemStatus, PromptSource
from annotate.core.choices import STRENGTH_LEVEL, Mode, SafetyLabel, Strength, Track
from annotate.core.errors import ConflictError, DomainError
from annotate.core.rendering import render_markdown
from annotate.core.views import error_json, wants_json
from annotate.judgments import services as judgments
from annotate.workbench import selectors

View = Callable[..., HttpResponse]
STRENGTH_KEYS = "qwer"  # strongest to weakest, left to right on the keyboard


def annotator_required(view: View) -> View:
    """Signed-in users only; a script request whose session ran out gets 401 JSON (so the page can keep
    the annotator's answer and ask them to sign in again) instead of a redirect to the login page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if wants_json(request):
                return error_json(401, "login_required", "Your session has ended. Sign in again to continue.")
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


def _batch_for(request: HttpRequest, batch_id: int) -> Batch:
    batch = get_object_or_404(Batch, pk=batch_id)
    if not user_can_annotate_track(request.user, batch.track):
        raise Http404("No such batch.")
    return batch


@require_GET
@annotator_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "workbench/home.html",
        {
            "cards": selectors.annotator_batches(request.user),
            "consent_pending": safety_consent_pending(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@annotator_required
def safety_consent(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("agree") != "yes":
            return render(
                request,
                "workbench/consent.html",
                {"error": "Tick the box to confirm that you agree."},
                status=400,
            )
        try:
            qualification_record_consent(user=request.user)
        except DomainError as exc:
            return render(request, "workbench/consent.html", {"error": exc.message}, status=400)
        return redirect("workbench:home")
    return render(request, "workbench/consent.html", {})


@require_http_methods(["GET", "POST"])
@annotator_required
def guidelines(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch_for(request, batch_id)
    if request.method == "POST":
        assignments.guidelines_mark_seen(annotator=request.user, batch=batch)
        return redirect("workbench:batch", batch_id=batch.pk)
    return render(
        request,
        "workbench/guidelines.html",
        {
            "batch": batch,
            "guidelines_html": render_markdown(batch.guidelines),
            "must_read": assignments.guidelines_needed(annotator=request.user, batch=batch),
        },
    )


@require_GET
@annotator_required
def batch_next(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Start or continue a batch: guidelines first if unread, then the annotator's current or next item."""
    return _next_response(request, _batch_for(request, batch_id))


def _next_response(
    request: HttpRequest, batch: Batch, progress: assignments.Progress | None = None
) -> HttpResponse:
    if assignments.guidelines_needed(annotator=request.user, batch=batch):
        if wants_json(request) or request.htmx:
            # Our script follows this to the guidelines page (new version since the last item).
            response = HttpResponse(status=200)
            response["X-Navigate"] = reverse("workbench:guidelines", args=[batch.pk])
            return response
        return redirect("workbench:guidelines", batch_id=batch.pk)
    if batch.prompt_source == PromptSource.LIVE:  # annotators write the prompts: see live.py
        from annotate.workbench import live

        return live.next_for_live_batch(request, batch)
    try:
        assignment = assignments.assignment_claim_next(annotator=request.user, batch=batch)
    except ConflictError as exc:
        return render(
            request, "workbench/batch_unavailable.html", {"batch": batch, "message": exc.message}, status=409
        )
    if assignment is None:
        return _done_response(request, batch)
    if request.htmx or wants_json(request):
        return _item_response(request, assignment, progress=progress)
    return redirect("workbench:assignment", assignment_id=assignment.pk)


def _done_response(request: HttpRequest, batch: Batch, status: int = 200) -> HttpResponse:
    context = {"batch": batch, "progress": selectors.my_progress(request.user, batch)}
    template = "workbench/_done.html" if (request.htmx or wants_json(request)) else "workbench/done.html"
    response = render(request, template, context, status=status)
    response["X-Page-Url"] = reverse("workbench:batch", args=[batch.pk])
    return response


def _item_context(
    request: HttpRequest,
    assignment: Assignment,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    idempotency_key: str | None = None,
    progress: assignments.Progress | None = None,
) -> dict[str, Any]:
    batch = assignment.batch
    data = selectors.item_view_data(assignment)
    values = values or {}
    return {
        "assignment": assignment,
        "batch": batch,
        "item": assignment.item,
        "turns": data["turns"],
        "responses": data["responses"],
        "is_pairwise": batch.mode == Mode.PAIRWISE,
        "is_safety": batch.track == Track.SAFETY,
        "strengths": [
            (s.value, s.label, STRENGTH_LEVEL[s], key) for s, key in zip(Strength, STRENGTH_KEYS, strict=True)
        ],
        "safety_choices": SafetyLabel.choices,
        "flags": [f for f in AssignmentFlag if f.value],
        "values": values,
        "errors": errors or {},
        "idempotency_key": idempotency_key or uuid.uuid4().hex,
        "progress": progress or selectors.my_progress(request.user, batch),
        "lease_expired": assignment.status == AssignmentStatus.EXPIRED,
        "guidelines_url": reverse("workbench:guidelines", args=[batch.pk]),
    }


def _item_response(
    request: HttpRequest, assignment: Assignment, *, status: int = 200, **context_kwargs: Any
) -> HttpResponse:
    context = _item_context(request, assignment, **context_kwargs)
    partial = request.htmx or wants_json(request)
    response = render(
        request, "workbench/_item.html" if partial else "workbench/item.html", context, status=status
    )
    response["X-Page-Url"] = reverse("workbench:assignment", args=[assignment.pk])
    return response


@require_GET
@annotator_required
def assignment_page(request: HttpRequest, assignment_id: int) -> HttpResponse:
    try:
        assignment = assignments.get_own_assignment(annotator=request.user, assignment_id=assignment_id)
    except assignments.NotFound:
        raise Http404("No such item.") from None
    if assignment.status in (AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED):
        # Finished already (a reload after submit, or the back button): move on to the next one.
        return redirect("workbench:batch", batch_id=assignment.batch_id)
    if assignment.item.status == ItemStatus.PENDING and assignment.item.dialogue_id:
        # A live prompt whose responses are still coming: its progress page.
        return redirect("workbench:live_dialogue", dialogue_id=assignment.item.dialogue_id)
    return _item_response(request, assignment)


def _form_values(request: HttpRequest) -> dict[str, Any]:
    """What the annotator had chosen, to put back into a re-rendered form."""
    post = request.POST
    return {
        "chosen": post.get("chosen", ""),
        "strength": post.get("strength", ""),
        "ranking": post.get("ranking", ""),
        "rationale": post.get("rationale", ""),
        "safety": {k[7:]: v for k, v in post.items() if k.startswith("safety_")},
        "confirm_unsafe_choice": post.get("confirm_unsafe_choice", ""),
    }


@require_POST
@annotator_required
def assignment_submit(request: HttpRequest, assignment_id: int) -> HttpResponse:
    key = str(request.POST.get("idempotency_key", ""))
    try:
        data = judgments.judgment_input_from_form(request.POST)
        result = judgments.judgment_submit(annotator=request.user, assignment_id=assignment_id, data=data)
    except assignments.NotFound:
        return _not_found(request)
    except judgments.JudgmentInvalid as exc:
        try:
            assignment = assignments.get_own_assignment(annotator=request.user, assignment_id=assignment_id)
        except assignments.NotFound:
            return _not_found(request)
        return _item_response(
            request,
            assignment,
            status=400,
            values=_form_values(request),
            errors=exc.errors,
            idempotency_key=key,
        )
    except ConflictError as exc:
        mine = {"assignments__pk": assignment_id, "assignments__annotator": request.user}
        batch = Batch.objects.filter(**mine).first()
        if batch is None:
            return _not_found(request)
        return _conflict(request, batch, exc)
    if result.assignment.batch.prompt_source == PromptSource.LIVE:
        # A live turn (only live batches have them): its author goes back to the dialogue to continue it.
        from annotate.workbench import live

        then = live.url_after_judging(request.user, result.assignment.item)
        if then:
            return _navigate(request, then, judgment_id=result.judgment.pk, replayed=result.replayed)
    return _after_finish(
        request,
        result.assignment.batch,
        judgment_id=result.judgment.pk,
        replayed=result.replayed,
        progress=result.progress,
    )


@require_POST
@annotator_required
def assignment_skip(request: HttpRequest, assignment_id: int) -> HttpResponse:
    try:
        assignment = assignments.get_own_assignment(annotator=request.user, assignment_id=assignment_id)
        flag = str(request.POST.get("flag", ""))
        if flag:
            assignments.assignment_flag(
                annotator=request.user,
                assignment_id=assignment.pk,
                flag=flag,
                note=str(request.POST.get("note", "")),
            )
        assignments.assignment_skip(
            annotator=request.user, assignment_id=assignment.pk, reason=str(request.POST.get("reason", ""))
        )
    except assignments.NotFound:
        return _not_found(request)
    except ConflictError as exc:
        return _conflict(request, assignment.batch, exc)
    except DomainError as exc:
        errors = {exc.field or "reason": exc.message}
        return _item_response(request, assignment, status=400, values=_form_values(request), errors=errors)
    return _after_finish(request, assignment.batch)


@require_POST
@annotator_required
def assignment_flag(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """Flag without skipping: the annotator can still judge the item."""
    try:
        assignment = assignments.assignment_flag(
            annotator=request.user,
            assignment_id=assignment_id,
            flag=str(request.POST.get("flag", "")),
            note=str(request.POST.get("note", "")),
        )
    except assignments.NotFound:
        return _not_found(request)
    except DomainError as exc:
        if wants_json(request):
            return error_json(400, exc.code, exc.message, {exc.field or "flag": [exc.message]})
        return redirect("workbench:assignment", assignment_id=assignment_id)
    if wants_json(request):
        return error_json(200, "ok", f"Flagged as {assignment.get_flag_display().lower()}.")
    return redirect("workbench:assignment", assignment_id=assignment.pk)


def _after_finish(request: HttpRequest, batch: Batch, **headers: Any) -> HttpResponse:
    """After a submit or skip: the next item's HTML for our script, or a redirect for a plain form."""
    if not wants_json(request) and not request.htmx:
        return redirect("workbench:batch", batch_id=batch.pk)
    response = _next_response(request, batch, headers.get("progress"))
    if headers.get("judgment_id"):
        response["X-Judgment-Id"] = str(headers["judgment_id"])
        response["X-Replayed"] = "1" if headers.get("replayed") else "0"
    response["X-Finished"] = "1"
    return response


def _navigate(request: HttpRequest, url: str, *, judgment_id: int, replayed: bool) -> HttpResponse:
    """After a submit: go to `url` (our script follows X-Navigate; a plain form gets a redirect)."""
    if not wants_json(request) and not request.htmx:
        return redirect(url)
    response = HttpResponse(status=200)
    response["X-Navigate"] = url
    response["X-Judgment-Id"] = str(judgment_id)
    response["X-Replayed"] = "1" if replayed else "0"
    response["X-Finished"] = "1"
    return response


def _conflict(request: HttpRequest, batch: Batch, exc: ConflictError) -> HttpResponse:
    context = {"batch": batch, "message": exc.message, "code": exc.code}
    template = (
        "workbench/_conflict.html" if (wants_json(request) or request.htmx) else "workbench/conflict.html"
    )
    response = render(request, template, context, status=409)
    response["X-Error-Code"] = exc.code
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return error_json(404, "not_found", "No such item.")
    raise Http404("No such item.")
