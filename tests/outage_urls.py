"""The project's routes plus three probes for the database outage test.

`/api/v1/outage-probe` and `/api/v3/outage-probe` are DRF views behind the partner API's
real authentication class (a key header makes it look the key up); each reads the database.
`/outage/session-write` touches no table itself: its session is saved by SessionMiddleware
after the view, so an outage hits a middleware, not the view.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from exchange.api.auth import ApiKeySignatureAuthentication


class OutageProbeApi(APIView):
    authentication_classes = (ApiKeySignatureAuthentication,)
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response({"users": User.objects.count()})


def session_write(request: HttpRequest) -> HttpResponse:
    request.session["probe"] = request.session.get("probe", 0) + 1
    return HttpResponse("saved", content_type="text/plain")


urlpatterns = [
    path("api/v1/outage-probe", OutageProbeApi.as_view()),
    path("api/v3/outage-probe", OutageProbeApi.as_view()),
    path("outage/session-write", session_write),
    path("", include("exchange.urls")),
]
