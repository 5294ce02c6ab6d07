#!/usr/bin/env python
"""Django's command-line utility for the example project."""

import os
import sys

if __name__ == "__main__":
    # Before Django is imported: ``runworker --pool gevent`` needs gevent's patching first.
    from djqueue import gevent_patch

    gevent_patch.patch_if_requested()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
