"""Sign-in with a rate limit on attempts, per client address and per username; the API tokens page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from annotate.core import ratelimit
from annotate.core.errors import DomainError

RATE_LIMITED = "Too many sign-in attempts. Wait a few minutes and try again."


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = str(request.POST.get("username", "")).strip().lower()[:150]
        limit, window = settings.LOGIN_ATTEMPTS_PER_WINDOW, settings.LOGIN_WINDOW_SECONDS
        # Both counters are taken on every attempt, so neither a sprayed username nor one address
        # trying many accounts gets more than the limit.
        by_ip = ratelimit.hit("login-ip", ratelimit.client_ip(request), limit=limit * 5, window_s=window)
        by_user = ratelimit.hit("login-user", username, limit=limit, window_s=window)
        if not (by_ip and by_user):
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(form=form, rate_limited=RATE_LIMITED)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(window)
            return response
        return super().post(request, *args, **kwargs)


# --- Personal API tokens -----------------------------------------------------------------------------

TOKEN_EXPIRY_CHOICES = [
    ("30", "in 30 days"),
    ("7", "in 7 days"),
    ("90", "in 90 days"),
    ("365", "in a year"),
    ("", "never"),
]


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “labelling vendor”.")
    expires_in_days = forms.TypedChoiceField(
        choices=TOKEN_EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, label="Expires"
    )


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List, create and revoke the user's API tokens. A new token is shown once, in the response to the
    POST that created it (never stored, never shown again; not cached)."""
    from annotate.api import selectors as api_selectors
    from annotate.api import services as api_services

    form = ApiTokenForm()
    created: api_services.CreatedToken | None = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "revoke":
        token_id = str(request.POST.get("token_id", ""))
        try:
            api_services.token_revoke(user=request.user, token_id=int(token_id) if token_id.isdigit() else 0)
        except DomainError:
            messages.error(request, "That token does not exist (any more).")
        else:
            messages.success(request, "Token revoked: it no longer works.")
        return redirect("api_tokens")
    if request.method == "POST":
        form = ApiTokenForm(request.POST)
        if form.is_valid() and not api_services.token_create_allowed(request.user):
            form.add_error(None, api_services.TokenCreationLimited().message)
            status = 429
        elif form.is_valid():
            try:
                created = api_services.token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = 400
            else:
                form = ApiTokenForm()
                status = 201
        else:
            status = 400
    response = render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": api_selectors.tokens_of(request.user),
            "now": timezone.now(),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response
