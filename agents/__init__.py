"""Faust agents: one module each, thin shells that read a message, call the core, send the result.

Every agent runs with concurrency 1: above it faust-streaming can commit past an
in-flight message (faust-streaming issue #606), and at-least-once matters here.
"""
