"""Builds that travel: a prepared protocol's artifacts exported to one archive by content and id, fetched and
imported elsewhere by file, URL or pinned id, so results compare across machines and no one need train."""
