"""The classic builder's JSON progress stream (what `docker build` with DOCKER_BUILDKIT=0 reads).

Messages are jsonmessage objects: `{"stream": "Step 1/5 : FROM busybox\\n"}` for text,
`{"aux": {"ID": "sha256:..."}}` for the built image, pull progress as `{"status": ...}`, and a
final `{"errorDetail": {"message": ..., "code": n}, "error": ...}` when the build fails.
The sink is a plain callable so the builder knows nothing of HTTP (the API hands it a queue).
"""

from __future__ import annotations

from typing import Any, Callable

Sink = Callable[[dict[str, Any]], None]


def short_id(image_id: str) -> str:
    """stringid.TruncateID: the first 12 hex digits, without the algorithm."""
    return image_id.split(":", 1)[-1][:12]


def error_message(message: str, code: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"message": message}
    if code:
        detail["code"] = code
    return {"errorDetail": detail, "error": message}


class Progress:
    """Writes the build's messages to `sink`; `quiet` keeps only what `docker build -q` shows
    (the image ID at the end, pull errors), as dockerd's `q=1` does."""

    def __init__(self, sink: Sink | None, quiet: bool = False) -> None:
        self._sink = sink
        self.quiet = quiet
        self.sent = 0

    def _emit(self, msg: dict[str, Any]) -> None:
        if self._sink is not None:
            self.sent += 1
            self._sink(msg)

    def forward(self, msg: dict[str, Any]) -> None:
        """A message made by a stage's own Progress (already filtered by it)."""
        self._emit(msg)

    def stream(self, text: str) -> None:
        if not self.quiet and text:
            self._emit({"stream": text})

    def output(self, data: bytes) -> None:
        """A RUN step's output, passed through as it comes."""
        if not self.quiet and data:
            self._emit({"stream": data.decode("utf-8", "replace")})

    def step(self, n: int, total: int, original: str) -> None:
        self.stream(f"Step {n}/{total} : {original}\n")

    def image(self, image_id: str | None) -> None:
        self.stream(f" ---> {short_id(image_id) if image_id else ''}\n")

    def status(self, msg: dict[str, Any]) -> None:
        """Pull progress for a FROM whose image is missing (already jsonmessage-shaped)."""
        if not self.quiet:
            self._emit(msg)

    def aux(self, image_id: str) -> None:
        self._emit({"aux": {"ID": image_id}})

    def final(self, image_id: str, tags: list[str]) -> None:
        if self.quiet:
            # dockerd's quiet build writes only the ID (the CLI's -q prints what it gets).
            self._emit({"stream": image_id + "\n"})
            return
        self.stream(f"Successfully built {short_id(image_id)}\n")
        for t in tags:
            self.stream(f"Successfully tagged {t}\n")

    def error(self, message: str, code: int | None = None) -> None:
        self._emit(error_message(message, code))
