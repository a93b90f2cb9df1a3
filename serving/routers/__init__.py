"""One router per area of the spec's endpoint list."""

from fastapi import APIRouter

from serving.routers import auth, users

ROUTERS: list[APIRouter] = [auth.router, users.router]
