"""Reading an OperatorConfiguration file: decode, default (:func:`~druid.config.operator.parse`), validate."""

from __future__ import annotations

from pathlib import Path

import structlog
import yaml

from druid.config.errors import ConfigError, FieldError
from druid.config.operator import OperatorConfiguration, parse
from druid.config.validation import validate

log = structlog.get_logger(__name__)

MAX_FILE_BYTES = 1 << 20
"""A configuration file is a few kilobytes; a larger one is refused before it is parsed (a 20 MB file used to
take ten seconds of YAML parsing)."""


def read(path: str | Path) -> tuple[OperatorConfiguration, list[str]]:
    """Read a YAML config file: the defaulted and validated configuration and deprecation notes.

    Raises :class:`ConfigError` naming the field paths (``controllers.etcd.concurrentSyncs: must be
    greater than 0``), or the file for one that cannot be read, is too large, or is not UTF-8.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ConfigError([FieldError("<file>", f"cannot read {path}: {e.strerror or e}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([FieldError("<file>", f"{path} is larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([FieldError("<file>", f"{path} is not UTF-8 text (byte {e.start})")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([FieldError("<file>", f"not valid YAML: {e}")]) from None
    cfg, notes = parse(data)
    errors = validate(cfg)
    if errors:
        raise ConfigError(errors)
    return cfg, notes


def load(path: str | Path) -> OperatorConfiguration:
    """:func:`read` without the deprecation notes (they are logged)."""
    cfg, notes = read(path)
    for note in notes:
        log.warning(note, config=str(path))
    return cfg
