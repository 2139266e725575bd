"""`python -m callnow`: the same command as `callnow` (how `serve` starts its engine child)."""

from callnow.cli import main

main()
