"""HTTP-facing helpers of the user service."""

from app.users.store import UserStore


def profile(store: UserStore, user_id: str) -> dict:
    return store.get(user_id) or {}
