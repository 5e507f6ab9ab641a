"""Settings in both modes (embedded servers, named servers) and the production profile."""

import secrets

import pytest

from config.settings.base import celery_broker_url, redis_url_for
from tests.services import clean_environment, manage_py

PRINT_SERVERS = (
    "from django.conf import settings as s; from django.db import connection as c; "
    "c.ensure_connection(); from django.core.cache import cache; cache.set('k', 'v'); "
    "d = c.settings_dict; print(d['NAME'], d['HOST'] or d['OPTIONS']['host']); "
    "print(s.CACHES['default']['LOCATION']); print(s.CELERY_BROKER_URL); print(cache.get('k'))"
)


def test_without_variables_embedded_servers_start_and_stop(tmp_path):
    data_dir = tmp_path / "data"
    env = clean_environment(
        FANHUB_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings.dev"
    )

    result = manage_py("shell", "--no-imports", "-c", PRINT_SERVERS, env=env)

    assert result.returncode == 0, result.stderr
    db_line, cache_line, broker_line, value = result.stdout.split("\n")[:4]
    assert db_line.startswith("fanhub ") and str(data_dir / "postgres") in db_line
    assert cache_line.startswith(f"unix://{data_dir / 'redis' / 'redis.sock'}?db=1")
    assert broker_line == f"redis+socket://{data_dir / 'redis' / 'redis.sock'}?virtual_host=0"
    assert value == "v"
    # The last process using them stopped them.
    status = manage_py(
        "shell", "--no-imports", "-c", "", env=env
    )  # starts and stops again, cleanly
    assert status.returncode == 0, status.stderr
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "redis" / "redis.sock").exists()


def test_with_variables_the_named_servers_are_used(tmp_path, settings):
    """Point at the servers the suite itself runs on, named by URL; nothing embedded starts."""
    from django.db import connection

    database = connection.settings_dict
    host = database["HOST"] or database["OPTIONS"].get("host")
    if host.startswith("/"):
        database_url = f"postgres://{database['USER']}@/{database['NAME']}?host={host}"
    else:
        database_url = (
            f"postgres://{database['USER']}@{host}:{database['PORT'] or 5432}/{database['NAME']}"
        )
    redis_url = settings.CACHES["default"]["LOCATION"]
    data_dir = tmp_path / "unused"
    env = clean_environment(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FANHUB_DATA_DIR=str(data_dir),
        DJANGO_SETTINGS_MODULE="config.settings.dev",
    )

    result = manage_py("shell", "--no-imports", "-c", PRINT_SERVERS, env=env)

    assert result.returncode == 0, result.stderr
    db_line, cache_line, broker_line, value = result.stdout.split("\n")[:4]
    assert db_line == f"{database['NAME']} {host}"
    assert cache_line == redis_url_for(redis_url, 1)
    assert broker_line == celery_broker_url(redis_url_for(redis_url, 0))
    assert value == "v"
    assert not data_dir.exists()  # nothing embedded was started


def _production_env(**overrides):
    env = clean_environment(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.fanhub.example",
        SITE_URL="https://shop.fanhub.example",
        DATABASE_URL="postgres://fanhub@db.invalid:5432/fanhub",
        REDIS_URL="redis://cache.invalid:6379/0",
    )
    env.update(overrides)
    return env


def test_production_check_deploy_is_clean():
    result = manage_py("check", "--deploy", "--fail-level", "DEBUG", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"SECRET_KEY": "short"}, "long random value"),
        ({"SECRET_KEY": "dev-only-insecure-key-change-me" + "x" * 40}, "long random value"),
    ],
)
def test_production_refuses_to_start_without_real_configuration(overrides, message):
    result = manage_py("check", env=_production_env(**overrides))
    assert result.returncode != 0
    assert message in result.stderr
