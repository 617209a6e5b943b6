"""In-memory user store standing in for the real database client."""


class UserStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def save(self, user_id: str, changes: dict) -> None:
        self.rows.setdefault(user_id, {}).update(changes)

    def get(self, user_id: str) -> dict | None:
        return self.rows.get(user_id)
