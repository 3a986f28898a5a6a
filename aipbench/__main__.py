"""``python -m aipbench`` (and ``torchrun -m aipbench``): the `aipbench` command."""

from aipbench.cli import main

if __name__ == "__main__":
    main()
