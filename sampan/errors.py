"""The typed error hierarchy every subsystem raises.

Nothing here knows HTTP: `sampan.api.http` maps each class to a status code in exactly one
place (walking the MRO), and replies `{"message": str(exc)}`.
"""


class SampanError(Exception):
    """Base of every error that crosses a package boundary."""


class NotFound(SampanError):
    """No such container, image, exec instance, network, volume... (404)."""


class InvalidParameter(SampanError):
    """Bad input from the caller: malformed JSON, wrong type, invalid name or reference (400)."""


class Conflict(SampanError):
    """The request collides with current state: name in use, image in use, not running (409)."""


class NotModified(SampanError):
    """Nothing to do: already started, already stopped (304)."""


class Forbidden(SampanError):
    """Not allowed: e.g. removing a running container without force (403 in some routes)."""


class Unavailable(SampanError):
    """A feature or dependency that is not available on this host (503)."""


class Internal(SampanError):
    """A failure of sampan itself (500). Use sparingly: most failures have a better class."""
