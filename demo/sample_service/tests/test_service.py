from collections import deque

from app.users.service import UserService
from app.users.store import UserStore


def _queue(n: int) -> deque:
    return deque({"user_id": f"u{i % 7}", "changes": {"seen": i}} for i in range(n))


def test_process_queue_persists_every_message():
    store = UserStore()
    service = UserService(store)
    assert service.process_queue(_queue(20)) == 20
    assert store.get("u3") == {"seen": 17}
    assert service.processed == 20


def test_recent_updates_returns_newest_last():
    service = UserService(UserStore())
    service.process_queue(_queue(30))
    recent = service.recent_updates(limit=3)
    assert [m["changes"]["seen"] for m in recent] == [27, 28, 29]
