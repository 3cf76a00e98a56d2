"""Runs Keras code with only its imports changed to dagjax, and counts what passes (see BUILD_NOTES.md)."""
