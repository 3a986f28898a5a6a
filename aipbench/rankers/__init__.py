"""The second-stage rankers of the paper (§3.2) and any other: one interface (``base``), one file each that
registers its spec (``spec``), found by ``registry``."""
