"""Minimal ASGI apps, one per framework, serving the same two endpoints for bench/web_stack.py."""
