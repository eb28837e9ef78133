"""Production settings.

The deploy copies this file over settings.py, so it must stand alone: it
repeats what it needs instead of importing the development settings.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# The site user's home: the code is ~/Sites/<site> (or a release directory
# one level further down, ~/releases/<id>). Collected static files and the
# cache live there, beside the code rather than in it, as the seed recipe
# makes them. Not $HOME: a tyrant-mode vassal inherits the emperor's (root's).
HOME = BASE_DIR.parent.parent

# The site keeps no sessions, users or signed data, so the key protects
# nothing; still, let the environment supply a real one.
SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'example-site-has-no-secrets-to-protect')
DEBUG = False
ALLOWED_HOSTS = ['localhost', '127.0.0.1', '[::1]']

INSTALLED_APPS = [
    'django.contrib.staticfiles',
    'pages',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'example_site.urls'
WSGI_APPLICATION = 'example_site.wsgi.application'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [],
        'APP_DIRS': True,
        'OPTIONS': {'context_processors': ['django.template.context_processors.request']},
    },
]

# No DATABASES: the dummy backend means no sqlite file on the server.

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = False
USE_TZ = True

# collectstatic writes here (~/static); nginx serves /static/ from it.
STATIC_URL = '/static/'
STATIC_ROOT = HOME / 'static'

# Per-site cache in the site user's home (~/caches/django), so sites run as
# separate Unix users never share (or fight over permissions on) a cache.
CACHES = {
    'default': {
        'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache',
        'LOCATION': HOME / 'caches' / 'django',
    },
}

# With DEBUG off Django only mails request errors to ADMINS; send them to
# stderr instead so they land in the uWSGI log.
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'stderr': {'class': 'logging.StreamHandler'}},
    'loggers': {'django': {'handlers': ['stderr'], 'level': 'WARNING'}},
}
