"""The builder (issue 8): Dockerfile parser (`dockerfile`, `dockerfile_rules`, `shellwords`),
build context and COPY/ADD layers (`dockerignore`, `context`, `copy`), the step executor
(`builder`)."""
