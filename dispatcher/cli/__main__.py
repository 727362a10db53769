"""``python -m dispatcher.cli``: the same as the ``smsdispatch`` console script."""

from . import main

main()
