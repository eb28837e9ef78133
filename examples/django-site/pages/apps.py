from django.apps import AppConfig
from django.conf import settings

from .revision import UNKNOWN, read_revision


class PagesConfig(AppConfig):
    name = 'pages'
    revision = UNKNOWN

    def ready(self):
        # Read once at startup (django.setup(), run by wsgi.py), not per
        # request: the page shows the code this process loaded, and a uWSGI
        # reload re-runs this and picks up the new checkout.
        self.revision = read_revision(settings.BASE_DIR)
