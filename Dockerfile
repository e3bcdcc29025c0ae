# issue-service image: `docker build -t issue-service .`; `compose.yaml` runs it with PostgreSQL,
# NATS and the relay. The entry command is the console script the tests run
# (tests/e2e/test_console_script.py): `issue-service serve`, `migrate`, `seed`, `health`.

# --- build: install the package and its pinned dependencies into a virtualenv ---
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/issue-service
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY generated ./generated
RUN /opt/issue-service/bin/pip install .

# --- runtime: the virtualenv only, run by an unprivileged user ---
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin issues \
    && install -d -o issues -g issues /var/lib/issue-service
COPY --from=build /opt/issue-service /opt/issue-service
ENV PATH=/opt/issue-service/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ISSUES_ADDRESS=0.0.0.0:50051 \
    ISSUES_METRICS_ADDRESS=0.0.0.0
# The working directory is the user's: the default DATABASE_URL (sqlite:///issues.db) lands there.
WORKDIR /var/lib/issue-service
USER 10001
EXPOSE 50051 9464
# Through the gRPC health service (SERVING only while the database answers); the address
# follows ISSUES_ADDRESS.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 CMD ["issue-service", "health"]
ENTRYPOINT ["issue-service"]
CMD ["serve"]
