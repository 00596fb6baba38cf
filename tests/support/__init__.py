"""Helpers shared across the test tree (apps, servers, keys, receivers, gateways).

conftest.py files hold fixtures only; anything a test imports lives here, so a test
never imports a conftest module (pytest loads those itself, under names it chooses).
"""
