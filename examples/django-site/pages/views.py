from django.apps import apps
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render


def _revision():
    return apps.get_app_config('pages').revision


def index(request):
    return render(request, 'pages/index.html', {'revision': _revision()})


def revision(request):
    # Just the SHA, no markup or newline, for scripts and tests.
    return HttpResponse(_revision(), content_type='text/plain; charset=utf-8')


def settings_kind(request):
    # Which settings the running app loaded: "production" (DEBUG off) or
    # "development", so a check from outside can tell without reading files.
    kind = 'development' if settings.DEBUG else 'production'
    return HttpResponse(kind, content_type='text/plain; charset=utf-8')
