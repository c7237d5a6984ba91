"""Server events: what the platform saw or did to a server, kept for its tenant to read."""

from containervps.services.events.journal import EventType, list_events, record, record_in

__all__ = ["EventType", "list_events", "record", "record_in"]
