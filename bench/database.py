"""The benchmark database: created next to the main one on first use, then migrated."""

import os


def ensure() -> None:
    import environ
    import psycopg

    from config import embedded

    url = os.environ.get("DATABASE_URL") or embedded.database_url()
    config = environ.Env.db_url_config(url)
    host = config["HOST"] or config.get("OPTIONS", {}).get("host")
    params = {"host": host, "user": config["USER"], "dbname": "postgres", "autocommit": True}
    if config.get("PORT"):
        params["port"] = config["PORT"]
    if config.get("PASSWORD"):
        params["password"] = config["PASSWORD"]
    with psycopg.connect(**params) as conn:
        name = os.environ.get("BENCH_DATABASE", "fanhub_bench")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
