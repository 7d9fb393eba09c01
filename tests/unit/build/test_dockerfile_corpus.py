"""Real-world Dockerfile shapes, parsed end to end (stages, args, forms, substitution)."""

from __future__ import annotations

import time

from sampan.build.dockerfile import expand, expand_args, expand_kv, parse

NGINX_LIKE = r"""
FROM debian:bookworm-slim

LABEL maintainer="NGINX Docker Maintainers <docker-maint@nginx.com>"

ENV NGINX_VERSION   1.25.4
ENV NJS_VERSION     0.8.3
ENV PKG_RELEASE     1~bookworm

RUN set -x \
# create nginx user/group first, to be consistent throughout docker variants
    && groupadd --system --gid 101 nginx \
    && useradd --system --gid nginx --no-create-home --home /nonexistent --comment "nginx user" --shell /bin/false --uid 101 nginx \
    && apt-get update \
    && apt-get install --no-install-recommends --no-install-suggests -y gnupg1 ca-certificates \
    && \
    NGINX_GPGKEYS="573BFD6B3D8FBC641079A6ABABF5BD827BD9BF62 8540A6F18833A80E9C1653A42FD21310B49F6B46"; \
    for key in $NGINX_GPGKEYS; do echo "$key"; done \
# forward request and error logs to docker log collector
    && ln -sf /dev/stdout /var/log/nginx/access.log

COPY docker-entrypoint.sh /
COPY 10-listen-on-ipv6-by-default.sh /docker-entrypoint.d
ENTRYPOINT ["/docker-entrypoint.sh"]

EXPOSE 80

STOPSIGNAL SIGQUIT

CMD ["nginx", "-g", "daemon off;"]
"""

GO_MULTISTAGE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG ALPINE=3.19

FROM golang:${GO_VERSION}-alpine${ALPINE} AS builder
ARG TARGETOS=linux
ARG VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS go build -ldflags "-X main.version=${VERSION:-dev}" -o /out/app ./cmd/app

FROM gcr.io/distroless/static:nonroot AS runtime
COPY --from=builder --chown=65532:65532 /out/app /app
USER nonroot:nonroot
HEALTHCHECK --interval=30s --timeout=3s CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
"""

PYTHON_APP = """\
FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chmod=0755 <<'EOF' /usr/local/bin/entrypoint.sh
#!/bin/sh
set -e
exec "$@"
EOF
RUN <<EOF
useradd -m app
chown -R app "$APP_HOME"
EOF
RUN python3 <<PY
import sys
print(sys.version)
PY
USER app
VOLUME ["/srv/app/data"]
EXPOSE 8000/tcp
ENTRYPOINT ["entrypoint.sh"]
CMD gunicorn -b 0.0.0.0:8000 app:app
"""

WINDOWS = """\
# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
COPY testfile.txt c:\\
RUN New-Item -ItemType Directory C:\\Example `
    ; Write-Host done
WORKDIR c:\\app
"""

ENTRYPOINT_ENV = """\
FROM busybox
ENV APP_PORT=80 \\
    SERVER_NAME=localhost
COPY entrypoint.sh /entrypoint.sh
COPY <<EOF /etc/httpd.conf.tmpl
Listen ${APP_PORT}
ServerName ${SERVER_NAME}
EOF
RUN chmod +x /entrypoint.sh
ONBUILD COPY . /www
ENTRYPOINT ["/entrypoint.sh"]
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""


def test_nginx_like() -> None:
    df = parse(NGINX_LIKE)
    (st,) = df.stages
    cmds = [i.cmd for i in st.instructions]
    assert cmds == ["LABEL", "ENV", "ENV", "ENV", "RUN", "COPY", "COPY", "ENTRYPOINT", "EXPOSE",
                    "STOPSIGNAL", "CMD"]
    assert expand_kv(st.instructions[0], {}) == [
        ("maintainer", "NGINX Docker Maintainers <docker-maint@nginx.com>")]
    assert expand_kv(st.instructions[1], {}) == [("NGINX_VERSION", "1.25.4")]
    run = st.instructions[4]
    assert "# create" not in run.args[0] and "# forward" not in run.args[0]
    assert run.args[0].startswith("set -x     && groupadd --system")
    assert 'for key in $NGINX_GPGKEYS; do echo "$key"; done' in run.args[0]
    assert run.args[0].endswith("&& ln -sf /dev/stdout /var/log/nginx/access.log")
    assert st.instructions[-1].args == ["nginx", "-g", "daemon off;"]


def test_go_multistage_with_meta_args() -> None:
    df = parse(GO_MULTISTAGE)
    assert df.directives == {"syntax": "docker/dockerfile:1"}
    meta = {}
    for a in df.meta_args:
        meta.update(expand_kv(a, meta))
    assert meta == {"GO_VERSION": "1.22", "ALPINE": "3.19"}
    builder, runtime = df.stages
    assert expand(builder.base, meta) == "golang:1.22-alpine3.19"
    assert (builder.name, runtime.name) == ("builder", "runtime")
    assert builder.instructions[4].flags == {"mount": "type=cache,target=/go/pkg/mod"}
    assert expand_args(builder.instructions[2], {}) == ["/src"]
    copy = runtime.instructions[0]
    assert copy.flags == {"from": "builder", "chown": "65532:65532"}
    hc = runtime.instructions[2]
    assert (hc.args, hc.json, hc.flags) == (["CMD", "/app", "healthcheck"], True,
                                            {"interval": "30s", "timeout": "3s"})


def test_python_app_heredocs() -> None:
    (st,) = parse(PYTHON_APP).stages
    env = st.instructions[0]
    assert expand_kv(env, {}) == [("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1"),
                                  ("APP_HOME", "/srv/app")]
    assert expand_args(st.instructions[1], {"APP_HOME": "/srv/app"}) == ["/srv/app"]
    script = st.instructions[4]
    assert script.flags == {"chmod": "0755"}
    assert script.args == ["<<'EOF'", "/usr/local/bin/entrypoint.sh"]
    (h,) = script.heredocs
    assert (h.content, h.expand) == ('#!/bin/sh\nset -e\nexec "$@"\n', False)
    assert st.instructions[5].heredocs[0].content == 'useradd -m app\nchown -R app "$APP_HOME"\n'
    assert st.instructions[6].args == ["python3 <<PY"]
    assert [i.cmd for i in st.instructions[7:]] == ["USER", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD"]
    assert st.instructions[-1].args == ["gunicorn -b 0.0.0.0:8000 app:app"]


def test_windows_escape() -> None:
    df = parse(WINDOWS)
    assert df.escape == "`"
    shell, copy, run, workdir = df.stages[0].instructions
    assert shell.args == ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
    assert copy.args == ["testfile.txt", "c:\\"]                    # not a continuation
    assert run.args == ["New-Item -ItemType Directory C:\\Example     ; Write-Host done"]
    assert expand_args(workdir, {}, df.escape) == ["c:\\app"]


def test_entrypoint_env_course_case() -> None:
    (st,) = parse(ENTRYPOINT_ENV).stages
    env, _, tmpl, _, onbuild, ep, cmd = st.instructions
    assert expand_kv(env, {}) == [("APP_PORT", "80"), ("SERVER_NAME", "localhost")]
    assert tmpl.heredocs[0].content == "Listen ${APP_PORT}\nServerName ${SERVER_NAME}\n"
    assert tmpl.heredocs[0].expand
    assert onbuild.args == ["COPY . /www"]
    assert ep.args == ["/entrypoint.sh"] and cmd.json


def test_big_dockerfile_parses_fast() -> None:
    text = "FROM x\n" + "".join(f"RUN echo {i} \\\n  && true # {i}\nENV K{i}=v{i}\n" for i in range(5000))
    t0 = time.monotonic()
    df = parse(text)
    assert len(df.stages[0].instructions) == 10000
    assert time.monotonic() - t0 < 5  # ~0.2 s here; generous for a loaded machine


# Checked by hand against dockerd 20.10 (classic builder, DOCKER_BUILDKIT=0): the image config
# it produced from this Dockerfile is what the asserts below expect.
QUOTING = r"""FROM scratch
ENV a="x\"y" b='c $d' c=e\ f d=\$a e="\z\\" f=${nope:-"q u"}
ENV g=${a:+alt} h="${a}" i='${a}'
ENV legacy    some  "words"  $c
LABEL l1="${g}-${h}" l2=${c}
WORKDIR /w/${c}
USER ${nope:-u}:${a}
ENV X=1 Y=${X:-z}2
"""


def test_quoting_matches_dockerd() -> None:
    (st,) = parse(QUOTING).stages
    env: dict[str, str] = {}
    seen = {}
    for inst in st.instructions:
        if inst.cmd == "ENV":
            env.update(expand_kv(inst, env))
        elif inst.cmd == "LABEL":
            seen["labels"] = dict(expand_kv(inst, env))
        else:
            seen[inst.cmd] = expand_args(inst, env)[0]
    assert env == {"a": 'x"y', "b": "c $d", "c": "e f", "d": "$a", "e": "\\z\\", "f": "q u",
                   "g": "alt", "h": 'x"y', "i": "${a}", "legacy": "some  words  e f",
                   "X": "1", "Y": "z2"}
    assert seen == {"labels": {"l1": 'alt-x"y', "l2": "e f"}, "WORKDIR": "/w/e f", "USER": 'u:x"y'}
