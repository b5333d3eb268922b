"""A local simulator of the Calltouch API, for dry runs and tests (``ctq sandbox``)."""
