#!/usr/bin/env python
"""Chance-level mAP of an event-camera detection config under its evaluation protocol.

Thin script: the code is :mod:`sdt_dense.cli.event_chance`; ``--help`` lists the options.
"""

from sdt_dense.cli.event_chance import main

if __name__ == '__main__':
    main()
