from app.users.api import profile
from app.users.store import UserStore


def test_profile_of_unknown_user_is_empty():
    assert profile(UserStore(), "nobody") == {}
