"""Local development: `make run`, manage.py. Embedded services unless the environment names
servers."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
INTERNAL_IPS = ["127.0.0.1"]

# Serve static files from the app folders without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

import warnings  # noqa: E402

# Finders serve static files in development; staticfiles/ only exists after collectstatic.
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
