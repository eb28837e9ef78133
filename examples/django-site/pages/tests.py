import subprocess
import tempfile

from django.apps import apps
from django.test import SimpleTestCase

from .revision import read_revision

# SimpleTestCase: no database is set up, so no sqlite file is written.


class PagesTests(SimpleTestCase):
    def test_index_shows_revision(self):
        revision = apps.get_app_config('pages').revision
        response = self.client.get('/')
        self.assertContains(response, f'<code id="revision">{revision}</code>')
        self.assertContains(response, 'pages/site.css')

    def test_revision_endpoint_is_plain_sha(self):
        response = self.client.get('/revision')
        self.assertEqual(response['Content-Type'], 'text/plain; charset=utf-8')
        self.assertEqual(response.content.decode(), apps.get_app_config('pages').revision)

    def test_settings_endpoint_names_the_settings_loaded(self):
        with self.settings(DEBUG=False):
            self.assertEqual(self.client.get('/settings').content.decode(), 'production')
        with self.settings(DEBUG=True):
            self.assertEqual(self.client.get('/settings').content.decode(), 'development')


class ReadRevisionTests(SimpleTestCase):
    def test_not_a_checkout(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.assertEqual(read_revision(tmp), 'unknown')

    def test_checkout(self):
        with tempfile.TemporaryDirectory() as tmp:
            def git(*args):
                return subprocess.run(
                    ['git', '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', *args],
                    cwd=tmp, check=True, capture_output=True, text=True,
                ).stdout.strip()
            git('init', '-q')
            git('commit', '-q', '--allow-empty', '-m', 'test')
            self.assertEqual(read_revision(tmp), git('rev-parse', 'HEAD'))
