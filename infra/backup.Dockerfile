# The `postgres_backup` service: the postgres image (its pg_dump matches the server's major version)
# with the standard-library Python that runs infra/backup.py.
FROM postgres:16-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY infra/__init__.py infra/backup.py ./infra/
RUN mkdir -p /backups && chown postgres:postgres /backups && chmod 700 /backups
ENV BACKUP_DIR=/backups TZ=UTC
USER postgres
CMD ["python3", "-m", "infra.backup", "serve"]
