# The remediate container action. Debian slim with the distribution's Python, git and CA certificates;
# the pinned Python dependencies in a virtual environment. Runs as root, as GitHub's runner expects.
FROM debian:bookworm-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory /github/workspace

COPY pyproject.toml README.md /opt/remediate/src/
COPY remediate /opt/remediate/src/remediate
RUN python3 -m venv /opt/remediate/venv \
 && /opt/remediate/venv/bin/pip install /opt/remediate/src \
 && rm -rf /opt/remediate/src

COPY entrypoint.py /opt/remediate/entrypoint.py
# The repository's tests run with the image's Python, where pytest is installed.
ENV PATH=/opt/remediate/venv/bin:$PATH

ENTRYPOINT ["/opt/remediate/venv/bin/python", "/opt/remediate/entrypoint.py"]
