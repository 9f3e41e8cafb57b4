"""``python -m refinenet_deploy``: the ``rfdeploy`` command."""

from .cli import main

if __name__ == "__main__":
    main()
