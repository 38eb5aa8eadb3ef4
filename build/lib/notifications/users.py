"""The recipients' side of any user model: what "active" means when it may not be a field.

AbstractBaseUser has `is_active` as a plain attribute (always true) unless the
model declares the field, as Django's own User does.
"""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet


def has_field(name: str) -> bool:
    return any(f.name == name for f in get_user_model()._meta.concrete_fields)


def active_users() -> QuerySet:
    users = get_user_model().objects.all()
    return users.filter(is_active=True) if has_field("is_active") else users
