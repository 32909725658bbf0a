"""The workbench pages of live batches: write a prompt, watch its responses arrive, then judge them on
the usual item page (annotate/workbench/views.py), then continue the dialogue or end it.

Pages are plain forms (POST, then redirect), so they work without script; htmx polls the small status
fragment while responses generate. The state lives in the database (annotate/batches/live_selectors.py):
a reload shows the same thing as before it.

Where a live batch's pages go:
    /b/<batch>/            -> the annotator's open item if any, else the prompt page (views._next_response)
    /b/<batch>/live/       the prompt page: write a new prompt (POST starts a dialogue)
    /live/<dialogue>/      the dialogue: progress while generating, then the item page to judge; after the
                           judgment, the form for the next turn and "End the dialogue"
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.accounts.models import User
from annotate.assignments import services as assignments
from annotate.assignments.models import Assignment, AssignmentStatus
from annotate.batches import live as live_services
from annotate.batches import live_selectors as selectors
from annotate.batches.models import Batch, Dialogue, Item, PromptSource
from annotate.core.errors import ConflictError, DomainError
from annotate.core.rendering import render_markdown
from annotate.core.views import wants_json
from annotate.workbench.views import _batch_for, _item_response, annotator_required


def _go(request: HttpRequest, url: str) -> HttpResponse:
    """Navigate: our scripts (fetch, htmx) follow X-Navigate / HX-Redirect, a browser a redirect."""
    if request.htmx:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    if wants_json(request):
        response = HttpResponse(status=200)
        response["X-Navigate"] = url
        return response
    return redirect(url)


def dialogue_url(dialogue_id: uuid.UUID | str) -> str:
    return reverse("workbench:live_dialogue", args=[dialogue_id])


def next_for_live_batch(request: HttpRequest, batch: Batch) -> HttpResponse:
    """What /b/<batch>/ shows in a live batch once the guidelines are read: the annotator's open item
    (its progress page while it generates), else the page to write a prompt."""
    lease = (
        Assignment.objects.filter(annotator=request.user, batch=batch, status=AssignmentStatus.ACTIVE)
        .select_related("item")
        .first()
    )
    if lease is not None:
        item = lease.item
        if item.status == Item.Status.PENDING and item.dialogue_id:
            return _go(request, dialogue_url(item.dialogue_id))
        try:  # renews the lease, exactly as for any batch
            current = assignments.assignment_claim_next(annotator=request.user, batch_id=batch.pk)
        except ConflictError:
            current = None
        if current is not None:
            if request.htmx or wants_json(request):
                return _item_response(request, current)
            return redirect("workbench:assignment", assignment_id=current.pk)
    return _go(request, reverse("workbench:live_prompt", args=[batch.pk]))


def url_after_judging(user: User, item: Item) -> str | None:
    """Where the author goes after judging a turn of their own dialogue: back to it, to continue or end
    it. None for anything else (others' items go on as in any batch)."""
    if item.dialogue_id and item.created_by_id == user.pk:
        return dialogue_url(item.dialogue_id)
    return None


def _live_batch_for(request: HttpRequest, batch_id: int) -> Batch:
    batch = _batch_for(request, batch_id)
    if batch.prompt_source != PromptSource.LIVE:
        raise Http404("No such live batch.")
    return batch


def _prompt_context(request: HttpRequest, batch: Batch, **extra: Any) -> dict[str, Any]:
    return {
        "batch": batch,
        "dialogues": selectors.recent_dialogues(request.user, batch),
        "others_waiting": selectors.others_waiting(request.user, batch) if batch.overlap > 1 else 0,
        "max_chars": settings.LIVE_PROMPT_MAX_CHARS,
        "idempotency_key": uuid.uuid4().hex,
        "values": {},
        "errors": {},
        **extra,
    }


@require_http_methods(["GET", "POST"])
@annotator_required
def prompt_page(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _live_batch_for(request, batch_id)
    if assignments.guidelines_needed(annotator=request.user, batch=batch):
        return redirect("workbench:guidelines", batch_id=batch.pk)
    if request.method == "GET":
        lease = Assignment.objects.filter(
            annotator=request.user, batch=batch, status=AssignmentStatus.ACTIVE
        ).exists()
        if lease:  # one open item per batch: finish it first
            return redirect("workbench:batch", batch_id=batch.pk)
        return render(request, "workbench/live_prompt.html", _prompt_context(request, batch))
    key = str(request.POST.get("idempotency_key", ""))
    prompt = str(request.POST.get("prompt", ""))
    try:
        turn = live_services.live_dialogue_start(
            annotator=request.user, batch_id=batch.pk, prompt=prompt, idempotency_key=key
        )
    except ConflictError as exc:
        if exc.code == "lease_active":
            return redirect("workbench:batch", batch_id=batch.pk)
        context = _prompt_context(request, batch, errors={"form": exc.message}, values={"prompt": prompt})
        return render(request, "workbench/live_prompt.html", {**context, "idempotency_key": key}, status=409)
    except DomainError as exc:
        context = _prompt_context(
            request, batch, errors={exc.field or "prompt": exc.message}, values={"prompt": prompt}
        )
        # The same key again: the corrected prompt is still this one submission.
        return render(request, "workbench/live_prompt.html", {**context, "idempotency_key": key}, status=400)
    return redirect(dialogue_url(turn.dialogue.pk))


def _own_dialogue(request: HttpRequest, dialogue_id: uuid.UUID) -> Dialogue:
    dialogue = selectors.own_dialogue(request.user, dialogue_id)
    if dialogue is None:
        raise Http404("No such dialogue.")
    return dialogue


def _conversation(state: selectors.DialogueState) -> list[dict[str, Any]]:
    """The dialogue so far, rendered and sanitized; the preferred answer to the last turn at the end."""
    messages = list(state.item.conversation)
    if state.answer is not None:
        messages.append({"role": "assistant", "content": state.answer.content})
    return [
        {"role": str(m.get("role", "")), "html": render_markdown(str(m.get("content", "")))} for m in messages
    ]


def _dialogue_context(request: HttpRequest, state: selectors.DialogueState, **extra: Any) -> dict[str, Any]:
    return {
        "state": state,
        "dialogue": state.dialogue,
        "batch": state.dialogue.batch,
        "turns": _conversation(state),
        "max_chars": settings.LIVE_PROMPT_MAX_CHARS,
        "values": {},
        "errors": {},
        **extra,
    }


@require_GET
@annotator_required
def dialogue_page(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    dialogue = _own_dialogue(request, dialogue_id)
    state = selectors.dialogue_state(dialogue)
    if state.phase == selectors.Phase.JUDGING and state.assignment is not None:
        return redirect("workbench:assignment", assignment_id=state.assignment.pk)
    return render(request, "workbench/live_dialogue.html", _dialogue_context(request, state))


@require_GET
@annotator_required
def status_fragment(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    """The progress of the last turn's responses, polled by htmx every second while they generate. Once
    all are ready it sends the page on to the item page."""
    dialogue = _own_dialogue(request, dialogue_id)
    state = selectors.dialogue_state(dialogue)
    if state.phase != selectors.Phase.GENERATING:
        target = (
            reverse("workbench:assignment", args=[state.assignment.pk])
            if state.phase == selectors.Phase.JUDGING and state.assignment is not None
            else dialogue_url(dialogue.pk)
        )
        return _go(request, target)
    return render(request, "workbench/live_status.html", {"state": state, "dialogue": dialogue})


def _dialogue_error(
    request: HttpRequest, dialogue: Dialogue, exc: DomainError, values: dict[str, str]
) -> HttpResponse:
    state = selectors.dialogue_state(dialogue)
    context = _dialogue_context(request, state, errors={exc.field or "form": exc.message}, values=values)
    return render(request, "workbench/live_dialogue.html", context, status=exc.status_code)


@require_POST
@annotator_required
def continue_dialogue(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    dialogue = _own_dialogue(request, dialogue_id)
    prompt = str(request.POST.get("prompt", ""))
    raw_turn = str(request.POST.get("turn", "")).strip()
    try:
        turn_index = int(raw_turn) if raw_turn else None
    except ValueError:
        turn_index = -1
    try:
        if turn_index is not None and turn_index < 0:
            raise DomainError("The turn number is not valid; reload the page.", field="turn")
        live_services.live_dialogue_continue(
            annotator=request.user, dialogue_id=dialogue.pk, prompt=prompt, turn_index=turn_index
        )
    except ConflictError as exc:
        if exc.code == "lease_active":
            return redirect("workbench:batch", batch_id=dialogue.batch_id)
        return _dialogue_error(request, dialogue, exc, {"prompt": prompt})
    except DomainError as exc:
        return _dialogue_error(request, dialogue, exc, {"prompt": prompt})
    return redirect(dialogue_url(dialogue.pk))


@require_POST
@annotator_required
def end_dialogue(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    dialogue = _own_dialogue(request, dialogue_id)
    live_services.live_dialogue_end(annotator=request.user, dialogue_id=dialogue.pk)
    return redirect(dialogue_url(dialogue.pk))


@require_POST
@annotator_required
def retry_turn(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    dialogue = _own_dialogue(request, dialogue_id)
    live_services.live_turn_retry(annotator=request.user, dialogue_id=dialogue.pk)
    return redirect(dialogue_url(dialogue.pk))


@require_POST
@annotator_required
def discard_turn(request: HttpRequest, dialogue_id: uuid.UUID) -> HttpResponse:
    dialogue = _own_dialogue(request, dialogue_id)
    # A ConflictError: it became ready meanwhile, and the dialogue page now sends the author to judge it.
    with contextlib.suppress(ConflictError):
        live_services.live_turn_discard(annotator=request.user, dialogue_id=dialogue.pk)
    return redirect(dialogue_url(dialogue.pk))


@require_GET
@annotator_required
def judge_others(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Overlap above 1: take the next ready prompt someone else wrote, and judge it on the item page."""
    batch = _live_batch_for(request, batch_id)
    if assignments.guidelines_needed(annotator=request.user, batch=batch):
        return redirect("workbench:guidelines", batch_id=batch.pk)
    try:
        assignment = assignments.assignment_claim_next(annotator=request.user, batch_id=batch.pk)
    except ConflictError as exc:
        return render(
            request, "workbench/batch_unavailable.html", {"batch": batch, "message": exc.message}, status=409
        )
    if assignment is None:
        context = _prompt_context(request, batch, notice="Nobody else's prompt is waiting for you right now.")
        return render(request, "workbench/live_prompt.html", context)
    if assignment.item.status == Item.Status.PENDING and assignment.item.dialogue_id:
        return redirect(dialogue_url(assignment.item.dialogue_id))
    return redirect("workbench:assignment", assignment_id=assignment.pk)
