"""Development tools for etcdref (lint helpers); not part of the installed package."""
