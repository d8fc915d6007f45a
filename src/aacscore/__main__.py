"""``python -m aacscore``: the command-line interface (same as the ``aacscore`` command)."""

from aacscore.cli import main

if __name__ == "__main__":
    main()
