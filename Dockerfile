# The remediate container action. Debian slim with the distribution's Python, git and CA certificates; the
# pinned Python dependencies in a virtual environment built in a separate stage. Runs as root, as GitHub's
# runner expects of container actions; code of the change (tests, commands, tests.setup) runs as the
# unprivileged remediate-sandbox user (docs/safety.md). scripts/image builds and checks it without a Docker
# engine.
FROM debian:bookworm-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# git depends on perl only for commands the action never runs (send-email, svn, cvs); those it runs are built
# in. Dropping perl saves 50 MB, git's server-side, mail and dumb-HTTP programs another 15 MB, and the
# standard library's byte code for modules a run never imports (recompiled below for those it does) 8 MB. An
# image derived from this one that needs apt runs `apt-get install -f` first.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 git ca-certificates \
 && dpkg --remove --force-depends perl libperl5.36 perl-modules-5.36 \
 && rm -f /usr/lib/git-core/git-daemon /usr/lib/git-core/git-http-backend /usr/lib/git-core/git-http-push \
      /usr/lib/git-core/git-imap-send /usr/lib/git-core/git-shell /usr/lib/git-core/scalar \
      /usr/lib/git-core/git-http-fetch /usr/bin/git-shell /usr/bin/scalar \
 && find /usr/lib/python3.11 -name __pycache__ -prune -exec rm -rf {} + \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system --add safe.directory /github/workspace \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin remediate-sandbox

FROM runtime AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends --fix-broken \
 && apt-get install -y --no-install-recommends python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*
# A build behind a TLS-inspecting proxy passes its CA bundle (mounted for the build, never in the image).
ARG PIP_CERT=
COPY pyproject.toml README.md /src/
COPY remediate /src/remediate
RUN python3 -m venv /opt/remediate/venv \
 && /opt/remediate/venv/bin/pip install --quiet --no-compile --no-cache-dir --disable-pip-version-check \
      ${PIP_CERT:+--cert "$PIP_CERT"} /src \
 && /opt/remediate/venv/bin/pip uninstall --quiet --yes setuptools \
 && find /opt/remediate/venv -name '*.so' -exec strip --strip-unneeded {} +

FROM runtime
COPY --from=build /opt/remediate/venv /opt/remediate/venv
COPY entrypoint.py /opt/remediate/entrypoint.py
# Byte code only for what a run imports (the action, its dependencies as imported, pytest): a quick start
# without 40 MB of byte code for modules that are never loaded.
RUN /opt/remediate/venv/bin/python -m remediate.warm
# The repository's tests run with the image's Python, where pytest is installed; pip stays for `tests.setup`
# (e.g. `python -m pip install -r requirements-dev.txt`).
ENV PATH=/opt/remediate/venv/bin:$PATH

ENTRYPOINT ["/opt/remediate/venv/bin/python", "/opt/remediate/entrypoint.py"]
