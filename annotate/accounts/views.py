"""Sign-in with a rate limit on attempts, per client address and per username."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from annotate.core import ratelimit

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
