"""``python -m progface`` (also what ``torchrun -m progface train`` runs)."""

from progface.cli import main

if __name__ == "__main__":
    main()
