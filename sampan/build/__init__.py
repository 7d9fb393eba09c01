"""The builder (issue 8): Dockerfile parser (`dockerfile`, `shellwords`), build context and
COPY/ADD layers (`dockerignore`, `context`, `copy`), and the step executor (`builder`)."""
