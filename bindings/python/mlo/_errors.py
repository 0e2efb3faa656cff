"""Exceptions and warnings of the mlo package: one per family of mlo_status."""


class MloError(Exception):
    """A call of the C library returned a status other than MLO_OK.

    Attributes: ``status`` (the mlo_status number), ``name`` (``"MLO_ERR_INVALID_KEY"``),
    ``message`` (the library's mlo_strerror text) and ``detail`` (what the library
    reported through its error callback about this failure, or None)."""

    def __init__(self, status, message=None, detail=None, name=None):
        self.status = int(status)
        self.name = name or "MLO_STATUS_%d" % self.status
        self.message = message or "mlo status %d" % self.status
        self.detail = detail
        super().__init__(self.status, self.message, self.detail)

    def __str__(self):
        s = self.message
        if self.detail:
            s = self.detail if self.message in self.detail else s + ": " + self.detail
        return "%s [%s]" % (s, self.name)

    def __repr__(self):
        return "%s(%d, %r, %r)" % (type(self).__name__, self.status, self.message, self.detail)


class MloInvalidArgumentError(MloError, ValueError):
    """MLO_ERR_INVALID_ARGUMENT, and the base of the other bad-input errors."""


class MloInvalidKeyError(MloInvalidArgumentError):
    """MLO_ERR_INVALID_KEY: a metric, param or tag key the server would refuse."""


class MloInvalidUtf8Error(MloInvalidArgumentError):
    """MLO_ERR_INVALID_UTF8: a string that is not valid UTF-8 (lone surrogates)."""


class MloInvalidStatusError(MloInvalidArgumentError):
    """MLO_ERR_INVALID_STATUS: a run status outside FINISHED, FAILED, KILLED."""


class MloQueueFullError(MloError):
    """MLO_ERR_QUEUE_FULL: the event queue was full and the event was dropped."""


class MloClosedError(MloError):
    """MLO_ERR_CLOSED: the client is closed or closing."""


class MloTimeoutError(MloError):
    """MLO_ERR_TIMEOUT: flush, close or a synchronous request timed out."""


class MloNetworkError(MloError):
    """MLO_ERR_NETWORK: the server could not be reached (MloTLSError: TLS failed)."""


class MloConfigError(MloError):
    """MLO_ERR_CONFIG: an option or environment variable is malformed or missing."""


class MloNotSupportedError(MloError, NotImplementedError):
    """MLO_ERR_NOT_SUPPORTED: declared but not implemented in this version."""


class MloServerError(MloError):
    """The server refused or failed a request (MLO_ERR_SERVER*, _PROTOCOL, ...)."""


class MloNotFoundError(MloServerError, LookupError):
    """MLO_ERR_NOT_FOUND: the server does not know the run or experiment."""


class MloPermissionError(MloServerError):
    """MLO_ERR_PERMISSION: 401/403 from the server."""


class MloIOError(MloError, OSError):
    """MLO_ERR_IO: a local file or directory could not be read (missing, unreadable),
    or a downloaded file could not be written."""


class MloInvalidPathError(MloInvalidArgumentError):
    """MLO_ERR_INVALID_PATH: an artifact path that could escape its root ("..", an
    absolute path, a backslash, an empty segment), or a name from the server that
    would land outside the download directory."""


class MloArtifactsNotProxiedError(MloConfigError):
    """MLO_ERR_ARTIFACTS_NOT_PROXIED: the run's artifact store (s3://..., not
    mlflow-artifacts:) cannot be reached through the tracking server: run the server
    with --serve-artifacts."""


class MloWarning(UserWarning):
    """A warning the library reported (MLO_WARN_TRUNCATED, MLO_WARN_RETRY), or an
    error found later, on the shipper thread, passed to an ``on_error`` handler."""

    def __init__(self, status, message=None, detail=None, name=None):
        self.status = int(status)
        self.name = name or "MLO_STATUS_%d" % self.status
        self.message = message or ""
        self.detail = detail
        super().__init__(str(self))

    def __str__(self):
        return "%s [%s]" % (self.detail or self.message, self.name)


# status name -> exception class, built by install() from the table generated from the
# header (_mlo_ffi.STATUS_ERRORS): every MLO_ERR_* status has a class of its own, named
# after it (MLO_ERR_INVALID_KEY -> MloInvalidKeyError), under its family's class (the
# generator's STATUS_FAMILIES).  The classes above are the hand-written ones: their
# docstrings and the Python exceptions they also are (ValueError, OSError, ...); the
# others are made here, so a status added to the header gets its class at once.
STATUS_CLASSES = {}
GENERATED = {}  # class name -> class, for the statuses without a hand-written class


class MloNoMemoryError(MloError, MemoryError):
    """MLO_ERR_NO_MEMORY: the library ran out of memory."""


def install(table):
    """Builds STATUS_CLASSES from STATUS_ERRORS {name: (class, family, value, doc)}
    (families first).  Returns the classes made here."""
    g = globals()
    for name, (cls_name, family, _value, doc) in table.items():
        cls = g.get(cls_name)
        base = STATUS_CLASSES.get(family, MloError) if family else MloError
        if not (isinstance(cls, type) and issubclass(cls, MloError)):
            cls = type(cls_name, (base,), {"__doc__": "%s: %s" % (name, doc),
                                           "__module__": __name__})
            g[cls_name] = cls
            GENERATED[cls_name] = cls
        STATUS_CLASSES[name] = cls
    return dict(GENERATED)
