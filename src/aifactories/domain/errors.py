"""The one error hierarchy of aifactories.

Every layer raises these; the API maps each class to one HTTP status and the CLI to one
exit code, so a caller learns *what* is wrong and *how to fix it* the same way everywhere::

    AifError                       base; ``message`` is written for the person who must act
    ├── InvalidInput (422)         a request field is wrong; ``field`` names it, ``limit`` the bound
    │   └── MalformedScript (422)  a job script's directives cannot be read (line number given)
    ├── NotFound (404)             no such site, project, job, ... (or not visible to the caller)
    ├── AuthenticationRequired (401)  no token, or an unknown/revoked token
    ├── PermissionDenied (403)     authenticated, but the role does not allow the action
    ├── Conflict (409)             the request is valid but the current state forbids it
    │   ├── BudgetExceeded (409)   the job's reservation does not fit the allocation's remainder
    │   └── InvalidTransition (409) a job state change the state machine does not allow
    ├── CatalogueError             a site catalogue file is invalid (file and entry named)
    ├── ConfigurationError         settings or environment are wrong
    └── ExecutorError              a site back-end failed; raised only at the executor boundary
        ├── SiteUnavailable        the site's controller cannot be reached; retry later
        ├── SubmissionRejected     the site refused the job; ``reason`` is the site's own words
        └── ProtocolError          the site answered something the back-end cannot understand
"""

from __future__ import annotations


class AifError(Exception):
    """Base of every error aifactories raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AifError):
    """A field of a request is wrong. ``field`` names it; ``limit`` states the bound, if any."""

    code = "invalid_input"

    def __init__(self, field: str, message: str, limit: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message  # without the field's name: a form shows it next to the field
        self.limit = limit

    def beside_field(self) -> str:
        """What a form shows next to the field: the message, and the bound if there is one."""
        return f"{self.detail} ({self.limit})" if self.limit else self.detail


class MalformedScript(InvalidInput):
    """A job script could not be read; the message names the line."""

    code = "malformed_script"


class NotFound(AifError):
    code = "not_found"


class AuthenticationRequired(AifError):
    code = "authentication_required"


class PermissionDenied(AifError):
    code = "permission_denied"


class Conflict(AifError):
    code = "conflict"


class BudgetExceeded(Conflict):
    """The reservation (GPUs x time limit x billing weight) exceeds what is left."""

    code = "budget_exceeded"

    def __init__(self, message: str, needed_gpu_seconds: int, left_gpu_seconds: int) -> None:
        super().__init__(message)
        self.needed_gpu_seconds = needed_gpu_seconds
        self.left_gpu_seconds = left_gpu_seconds


class InvalidTransition(Conflict):
    code = "invalid_transition"


class CatalogueError(AifError):
    code = "catalogue_error"


class ConfigurationError(AifError):
    code = "configuration_error"


class ExecutorError(AifError):
    """A site back-end failed. Only executors raise it; the broker decides what follows."""

    code = "executor_error"


class SiteUnavailable(ExecutorError):
    code = "site_unavailable"


class SubmissionRejected(ExecutorError):
    code = "submission_rejected"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(ExecutorError):
    code = "protocol_error"
