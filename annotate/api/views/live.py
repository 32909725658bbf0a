"""Live prompts through the API: start a dialogue in a live batch, follow its responses, continue it turn
by turn, end it. The same services as the workbench (annotate/batches/live.py), so the same rules hold;
judging a turn is the usual `POST /assignments/{id}/submit/` with the turn's `assignment_id`."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotate.api.idempotency import REPLAYED_HEADER, derived_judgment_key
from annotate.api.permissions import IsAuthenticated
from annotate.api.serializers import InputSerializer
from annotate.api.views.base import ApiView, errors, write_errors
from annotate.api.views.batches import BatchScoped, require_ready_to_annotate
from annotate.batches import live as live_services
from annotate.batches import live_selectors
from annotate.batches.models import Dialogue, DialogueStatus, ResponseStatus

TAGS = ["live prompts"]


class LiveStartInput(InputSerializer):
    prompt = serializers.CharField(
        trim_whitespace=False,
        allow_blank=True,
        help_text="The first user message. Not empty; at most LIVE_PROMPT_MAX_CHARS characters.",
    )
    idempotency_key = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="The same key again replays the first answer (one dialogue). Defaults to one derived from "
        "the Idempotency-Key header, if any.",
    )


class LiveContinueInput(InputSerializer):
    prompt = serializers.CharField(
        trim_whitespace=False, allow_blank=True, help_text="The next user message."
    )
    turn = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The index of the turn this creates (the dialogue's `next_turn`). Sending it makes a "
        "retried request a replay instead of another turn.",
    )


class LiveResponseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=ResponseStatus.choices)
    error = serializers.CharField(allow_blank=True)


class MessageOut(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)


class LiveTurnOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="0 for the first prompt.")
    item_id = serializers.IntegerField()
    assignment_id = serializers.IntegerField(
        allow_null=True,
        help_text="Your lease on the turn: submit your judgment here once `phase` is judging.",
    )
    phase = serializers.ChoiceField(
        choices=["generating", "judging", "judged", "skipped", "discarded"],
        help_text="generating: responses being written (failed ones can be retried); judging: all ready, "
        "your judgment is due; judged: continue or end; skipped / discarded: the dialogue cannot go on.",
    )
    ready = serializers.IntegerField()
    total = serializers.IntegerField()
    failed = serializers.IntegerField()
    responses = LiveResponseOutput(many=True, help_text="In the order your assignment shows them.")


class DialogueOutput(serializers.Serializer):
    id = serializers.UUIDField()
    batch_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DialogueStatus.choices)
    created_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    conversation = MessageOut(
        many=True, help_text="The dialogue so far; once judged, ends with the answer you preferred."
    )
    turn = LiveTurnOutput(help_text="The last turn.")
    next_turn = serializers.IntegerField(
        allow_null=True, help_text="The index to send to /continue/ when the dialogue can go on; else null."
    )


def dialogue_payload(dialogue: Dialogue) -> dict[str, Any]:
    state = live_selectors.dialogue_state(dialogue)
    conversation = [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
        for m in state.item.conversation
    ]
    if state.answer is not None:
        conversation.append({"role": "assistant", "content": state.answer.content})
    return {
        "id": dialogue.pk,
        "batch_id": dialogue.batch_id,
        "status": dialogue.status,
        "created_at": dialogue.created_at,
        "ended_at": dialogue.ended_at,
        "conversation": conversation,
        "turn": {
            "index": state.item.turn_index,
            "item_id": state.item.pk,
            "assignment_id": state.assignment.pk if state.assignment else None,
            "phase": state.phase,
            "ready": state.ready,
            "total": state.total,
            "failed": state.failed,
            "responses": [
                {"id": r.id, "label": r.label, "status": r.status, "error": r.error} for r in state.responses
            ],
        },
        "next_turn": state.next_turn if state.can_continue else None,
    }


def _written(turn: live_services.LiveTurn) -> Response:
    headers = {} if turn.created else {REPLAYED_HEADER: "true"}
    return Response(
        DialogueOutput(dialogue_payload(turn.dialogue)).data,
        status=201 if turn.created else 200,
        headers=headers,
    )


class LiveStartView(BatchScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="live_start",
        tags=TAGS,
        summary="Write the first prompt of a dialogue in a live batch",
        description=(
            "Creates the turn's item, its K responses (generated by the workers) and your lease on it, so "
            "you judge it yourself: poll `GET /dialogues/{id}/` until `turn.phase` is `judging`, then "
            "`POST /assignments/{turn.assignment_id}/submit/`. 201; a replay (same `idempotency_key`) 200. "
            "400 `prompt` empty or too long; 409 `not_live`, `batch_not_open`, `lease_active` (you hold an "
            "item in this batch), `too_many_leases`, `guidelines_unread`, `no_sampling_config`."
        ),
        request=LiveStartInput,
        responses={
            201: DialogueOutput,
            200: OpenApiResponse(DialogueOutput, description="A replay: the dialogue started earlier."),
            **write_errors(404, 409),
        },
    )
    def post(self, request: Request, batch_id: int) -> Response:
        data = self.parse(LiveStartInput)
        batch = self.get_object()
        require_ready_to_annotate(request.user, batch)
        key = data.get("idempotency_key") or derived_judgment_key(request) or ""
        turn = live_services.live_dialogue_start(
            annotator=request.user, batch_id=batch_id, prompt=data["prompt"], idempotency_key=key
        )
        return _written(turn)


class DialogueScoped:
    lookup_url_kwarg = "dialogue_id"
    request: Request

    def dialogue(self, dialogue_id: uuid.UUID) -> Dialogue:
        dialogue = live_selectors.own_dialogue(self.request.user, dialogue_id)
        if dialogue is None:
            raise Http404("No such dialogue.")
        return dialogue


class DialogueDetailView(DialogueScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="dialogues_retrieve",
        tags=TAGS,
        summary="One of your live dialogues: the conversation so far and its last turn's progress",
        responses={200: DialogueOutput, **errors(404)},
    )
    def get(self, request: Request, dialogue_id: uuid.UUID) -> Response:
        return Response(DialogueOutput(dialogue_payload(self.dialogue(dialogue_id))).data)


class DialogueContinueView(DialogueScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="dialogues_continue",
        tags=TAGS,
        summary="Continue a dialogue with your next message",
        description=(
            "After you judged the last turn: the answer you preferred becomes the assistant's turn and "
            "your message the next user turn, a new item with its own responses and your lease. 201; a "
            "replay (same `turn` and text) 200. 400 `prompt`, `turn`; 409 `turn_not_judged`, "
            "`dialogue_ended`, `turn_exists`, `too_many_turns`, `lease_active`, `batch_not_open`."
        ),
        request=LiveContinueInput,
        responses={
            201: DialogueOutput,
            200: OpenApiResponse(DialogueOutput, description="A replay: the turn added earlier."),
            **write_errors(404, 409),
        },
    )
    def post(self, request: Request, dialogue_id: uuid.UUID) -> Response:
        data = self.parse(LiveContinueInput)
        dialogue = self.dialogue(dialogue_id)
        turn = live_services.live_dialogue_continue(
            annotator=request.user,
            dialogue_id=dialogue.pk,
            prompt=data["prompt"],
            turn_index=data.get("turn"),
        )
        return _written(turn)


class DialogueEndView(DialogueScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="dialogues_end",
        tags=TAGS,
        summary="End a dialogue (idempotent); a turn still open can still be judged",
        request=None,
        responses={200: DialogueOutput, **write_errors(404)},
    )
    def post(self, request: Request, dialogue_id: uuid.UUID) -> Response:
        self.no_body()
        dialogue = live_services.live_dialogue_end(
            annotator=request.user, dialogue_id=self.dialogue(dialogue_id).pk
        )
        return Response(DialogueOutput(dialogue_payload(dialogue)).data)


class DialogueRetryView(DialogueScoped, ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="dialogues_retry",
        tags=TAGS,
        summary="Generate the failed responses of the last turn again",
        request=None,
        responses={200: DialogueOutput, **write_errors(404)},
    )
    def post(self, request: Request, dialogue_id: uuid.UUID) -> Response:
        self.no_body()
        dialogue = self.dialogue(dialogue_id)
        live_services.live_turn_retry(annotator=request.user, dialogue_id=dialogue.pk)
        return Response(DialogueOutput(dialogue_payload(dialogue)).data)
