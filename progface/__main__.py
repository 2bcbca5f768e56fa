"""``python -m progface`` (and ``torchrun -m progface``) runs the command line."""

from progface.cli import main

if __name__ == "__main__":
    main()
