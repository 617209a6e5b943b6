"""User service: consumes the profile-update queue and persists each message."""

from collections import deque

from app.users.store import UserStore


class UserService:
    def __init__(self, store: UserStore) -> None:
        self.store = store
        self.processed = 0
        self._audit_log: list[dict] = []

    def process_queue(self, queue: deque) -> int:
        """Persist every queued update; returns how many were processed."""
        handled = 0
        while queue:
            message = queue.popleft()
            self.store.save(message["user_id"], message["changes"])
            self._audit_log.append(message)
            handled += 1
        self.processed += handled
        return handled

    def recent_updates(self, limit: int = 10) -> list[dict]:
        """The last `limit` updates, newest last, for the admin page."""
        return self._audit_log[-limit:]
