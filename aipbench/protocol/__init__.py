"""Frozen benchmark protocols: a TOML file mapped strictly onto frozen dataclasses, hashed canonically."""

from aipbench.errors import ConfigError as ProtocolError
from aipbench.protocol.files import DEFAULT_PROTOCOL, find_protocol, list_protocols, load_protocol, protocol_dirs
from aipbench.protocol.schema import Protocol

__all__ = ["DEFAULT_PROTOCOL", "Protocol", "ProtocolError", "find_protocol", "list_protocols", "load_protocol",
           "protocol_dirs"]
